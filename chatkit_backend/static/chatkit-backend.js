// chatkit-backend.js: the browser side of chatkit-backend. An ES module, no build step, no dependencies.
//
//   import { createChatKitBackend } from "https://your-backend.example/static/chatkit-backend.js";
//   const backend = createChatKitBackend();            // baseUrl defaults to the backend that served this file
//   chatkit.setOptions({ api: backend.apiConfig({ domainKey: "domain_pk_..." }) });  // self-hosted ChatKit server
//   chatkit.setOptions({ api: { getClientSecret: backend.getClientSecret } });      // or: hosted sessions
//   const detach = backend.attach(chatkit);             // forwards ChatKit's events to analytics and /api/errors
//
// Same origin: cookies go along (credentials "same-origin"); hidden-page flushes use navigator.sendBeacon.
// Cross origin: credentials "include" (the backend must list the page's origin in CORS_ORIGINS, and its
// identity cookie must be SameSite=None; Secure when the page is on another site); hidden-page flushes use
// fetch(..., {keepalive: true}), because a beacon with a JSON body cannot pass a CORS preflight.

const PATHS = {
  chatkit: "/api/chatkit",
  attachments: "/api/chatkit/attachments",
  session: "/api/chatkit/session",
  refresh: "/api/chatkit/refresh",
  events: "/api/analytics/events",
  errors: "/api/errors",
};

// What a keepalive request or a beacon may carry in flight (the Fetch standard's limit is 64 KiB in total).
const MAX_BEACON_BYTES = 60 * 1024;

/** An answer in the backend's error contract (or a network failure, code "network_error", status 0). */
export class ChatKitBackendError extends Error {
  constructor(message, { code, status, requestId = null, retryAfter = null, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "ChatKitBackendError";
    this.code = code;
    this.status = status;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }
}

/** The backend's URL: where this module was served from, one level above /static/. */
function defaultBaseUrl() {
  return new URL("../", import.meta.url).href;
}

function newId() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

function isPlainObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

async function errorFromResponse(response, path) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's HTML page, say): fall back to the status.
  }
  const error = isPlainObject(body?.error) ? body.error : {};
  const retryAfter = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
  return new ChatKitBackendError(error.message ?? `POST ${path} answered HTTP ${response.status}`, {
    code: error.code ?? `http_${response.status}`,
    status: response.status,
    requestId: error.request_id ?? response.headers.get("X-Request-ID"),
    retryAfter: Number.isFinite(retryAfter) ? retryAfter : null,
  });
}

/**
 * Create the helper for one backend.
 *
 * options.baseUrl: the backend's URL (default: where this module was loaded from).
 * options.credentials: fetch credentials (default "same-origin" for a same-origin backend, else "include").
 * options.batchSize / options.flushIntervalMs: analytics are sent when this many are queued or after this long.
 * options.maxQueue: queued analytics kept at most while the backend is unreachable (oldest dropped first).
 * options.getToken: for the backend's jwt identity mode, an (async) function returning the user's bearer token;
 *   every request to the backend then carries `Authorization: Bearer <token>`.
 */
export function createChatKitBackend({
  baseUrl,
  credentials,
  getToken,
  batchSize = 20,
  flushIntervalMs = 5000,
  maxQueue = 500,
} = {}) {
  const base = new URL(baseUrl ?? defaultBaseUrl(), globalThis.location?.href);
  const root = base.href.replace(/\/+$/, "");
  const crossOrigin = globalThis.location ? base.origin !== globalThis.location.origin : true;
  const mode = credentials ?? (crossOrigin ? "include" : "same-origin");
  const queue = [];
  let timer = null;
  let currentThreadId = null;

  const url = (path) => root + path;

  /** Headers with the identity the backend expects: the cookie travels by `credentials`, a token here. */
  async function withIdentity(headers) {
    const merged = new Headers(headers);
    if (typeof getToken === "function") {
      const token = await getToken();
      if (token) merged.set("Authorization", `Bearer ${token}`);
    }
    return merged;
  }

  async function post(path, body, { retry = false, keepalive = false } = {}) {
    const init = {
      method: "POST",
      headers: await withIdentity({ "Content-Type": "application/json" }),
      body: JSON.stringify(body),
      credentials: mode,
      keepalive,
    };
    let response;
    for (let attempt = 0; ; attempt += 1) {
      try {
        response = await fetch(url(path), init);
        break;
      } catch (cause) {
        // Only a network failure (fetch rejects) is retried, once; an HTTP answer never is.
        if (!retry || attempt >= 1) {
          throw new ChatKitBackendError(`POST ${path} failed: ${cause?.message ?? cause}`, {
            code: "network_error",
            status: 0,
            cause,
          });
        }
      }
    }
    if (!response.ok) throw await errorFromResponse(response, path);
    return response.json().catch(() => null);
  }

  /** ChatKit's api.getClientSecret: a new session when `current` is null, a refresh of `current` otherwise. */
  async function getClientSecret(current) {
    const answer = current
      ? await post(PATHS.refresh, { client_secret: current }, { retry: true })
      : await post(PATHS.session, {}, { retry: true });
    if (typeof answer?.client_secret !== "string") {
      throw new ChatKitBackendError("The backend answered without a client_secret", {
        code: "invalid_response",
        status: 200,
      });
    }
    return answer.client_secret;
  }

  /**
   * ChatKit's `api` option for this backend's own ChatKit server (CHATKIT_MODE=self_hosted): every ChatKit
   * operation goes to /api/chatkit with the user's identity (cookie or bearer token).
   * `domainKey` is the key of the page's domain from OpenAI's domain allow-list (localhost needs none).
   */
  function apiConfig({ domainKey = "domain_pk_localhost_dev" } = {}) {
    return {
      url: url(PATHS.chatkit),
      domainKey,
      // Attachments go straight to the backend (multipart, field "file"); enable them with
      // composer: { attachments: { enabled: true } }.
      uploadStrategy: { type: "direct", uploadUrl: url(PATHS.attachments) },
      async fetch(input, init = {}) {
        return fetch(input, { ...init, credentials: mode, headers: await withIdentity(init.headers) });
      },
    };
  }

  /**
   * Upload one File or Blob as ChatKit's direct upload does; resolves to ChatKit's attachment
   * ({id, name, mime_type, type, preview_url?}) or rejects with a ChatKitBackendError (413, 415, ...).
   */
  async function uploadFile(file, name = file?.name ?? "upload") {
    const form = new FormData();
    form.append("file", file, name);
    let response;
    try {
      response = await fetch(url(PATHS.attachments), {
        method: "POST",
        body: form,
        credentials: mode,
        headers: await withIdentity(),
      });
    } catch (cause) {
      throw new ChatKitBackendError(`POST ${PATHS.attachments} failed: ${cause?.message ?? cause}`, {
        code: "network_error",
        status: 0,
        cause,
      });
    }
    if (!response.ok) throw await errorFromResponse(response, PATHS.attachments);
    return response.json();
  }

  /** Send one error report to /api/errors. Never throws: resolves to true when the backend stored it. */
  async function reportError(error, context = {}) {
    const { component = "chatkit", level = "error", ...rest } = isPlainObject(context) ? context : {};
    const isError = error instanceof Error;
    const message = isError ? `${error.name}: ${error.message}` : String(error?.message ?? error ?? "Unknown error");
    const details = { ...rest };
    if (error instanceof ChatKitBackendError) {
      Object.assign(details, { code: error.code, status: error.status, request_id: error.requestId });
    }
    const report = {
      id: newId(),
      message: message.slice(0, 4000) || "Unknown error",
      level,
      component,
      url: globalThis.location?.href,
      timestamp: new Date().toISOString(),
      context: details,
    };
    if (isError && error.stack) report.stack = String(error.stack).slice(0, 60000);
    try {
      // keepalive: a report made just before the page goes away still arrives.
      const keepalive = JSON.stringify(report).length < MAX_BEACON_BYTES;
      await post(PATHS.errors, report, { retry: true, keepalive });
      return true;
    } catch (failure) {
      // Reporting must never break the page, nor report its own failure (that would loop).
      console.warn("chatkit-backend: could not report an error", failure);
      return false;
    }
  }

  function schedule() {
    if (timer === null) timer = setTimeout(() => void flush(), flushIntervalMs);
  }

  function enqueue(event) {
    queue.push({ id: newId(), timestamp: new Date().toISOString(), ...event });
    if (queue.length > maxQueue) queue.splice(0, queue.length - maxQueue);
    if (queue.length >= batchSize) void flush();
    else schedule();
  }

  /** Queue a message event, e.g. {event: "response.start"}; the current thread id is added when known. */
  function trackMessage(event = {}) {
    enqueue({ thread_id: currentThreadId ?? undefined, ...event, type: "message" });
  }

  /** Queue a thread change; later message events carry this thread id. */
  function trackThreadChange({ threadId = null } = {}) {
    currentThreadId = threadId;
    enqueue({ type: "thread_change", event: "thread.change", thread_id: threadId ?? undefined });
  }

  /** Send what is queued now, in batches to /api/analytics/events. Events that could not be sent stay queued. */
  async function flush() {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    while (queue.length) {
      const batch = queue.splice(0, batchSize);
      try {
        await post(PATHS.events, batch, { retry: true });
      } catch (error) {
        // Unreachable, rate limited or failing: keep the events for the next flush. A 4xx (other than 429)
        // means the batch itself is refused; retrying it would fail the same way, so it is dropped.
        if (error.status === 0 || error.status === 429 || error.status >= 500) {
          queue.unshift(...batch);
          if (queue.length > maxQueue) queue.splice(0, queue.length - maxQueue);
          schedule();
        } else {
          console.warn("chatkit-backend: analytics batch refused", error);
        }
        return;
      }
    }
  }

  /** The page is going away: hand everything queued to the browser, which sends it even after unload. */
  function flushOnHide() {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    while (queue.length) {
      const batch = queue.splice(0, batchSize);
      const body = JSON.stringify(batch);
      // Same origin: a beacon carries the cookie and its JSON type needs no preflight.
      const beaconSent =
        !crossOrigin &&
        mode !== "omit" &&
        body.length < MAX_BEACON_BYTES &&
        typeof navigator?.sendBeacon === "function" &&
        navigator.sendBeacon(url(PATHS.events), new Blob([body], { type: "application/json" }));
      if (!beaconSent) {
        // Cross origin: a keepalive fetch outlives the page and, unlike a beacon, can pass a CORS preflight.
        fetch(url(PATHS.events), {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body,
          credentials: mode,
          keepalive: body.length < MAX_BEACON_BYTES,
        }).catch(() => {});
      }
    }
  }

  function onVisibilityChange() {
    if (document.visibilityState === "hidden") flushOnHide();
  }

  globalThis.document?.addEventListener("visibilitychange", onVisibilityChange);
  globalThis.addEventListener?.("pagehide", flushOnHide);

  /** Forward an <openai-chatkit> element's events here; returns a function that stops forwarding. */
  function attach(element) {
    const handlers = {
      "chatkit.error": (event) => {
        void reportError(event.detail?.error ?? event.detail, { component: "openai-chatkit" });
      },
      "chatkit.log": (event) => {
        const data = event.detail?.data;
        enqueue({
          type: "log",
          event: "log",
          name: typeof event.detail?.name === "string" ? event.detail.name.slice(0, 128) : undefined,
          data: data === undefined || isPlainObject(data) ? data : { value: data },
        });
      },
      "chatkit.response.start": () => trackMessage({ event: "response.start" }),
      "chatkit.response.end": () => trackMessage({ event: "response.end" }),
      "chatkit.thread.change": (event) => trackThreadChange({ threadId: event.detail?.threadId ?? null }),
    };
    for (const [name, handler] of Object.entries(handlers)) element.addEventListener(name, handler);
    return function detach() {
      for (const [name, handler] of Object.entries(handlers)) element.removeEventListener(name, handler);
    };
  }

  /** Stop listening for page hides (after a final flush of what is queued). */
  function close() {
    flushOnHide();
    globalThis.document?.removeEventListener("visibilitychange", onVisibilityChange);
    globalThis.removeEventListener?.("pagehide", flushOnHide);
  }

  return {
    apiConfig,
    uploadFile,
    getClientSecret,
    reportError,
    trackMessage,
    trackThreadChange,
    flush,
    attach,
    close,
    baseUrl: root,
  };
}
