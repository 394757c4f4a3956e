// Wires ChatKit's <openai-chatkit> to this backend. Copy it into your page; on another origin, import the
// helper with the backend's full URL (https://your-backend.example/static/chatkit-backend.js).
import { createChatKitBackend } from "../../static/chatkit-backend.js";

const backend = createChatKitBackend();
const chatkit = document.getElementById("chat");
const status = document.getElementById("status");
// The backend renders its mode (self_hosted or hosted) and the domain key it was given into the page.
const { mode, domainKey } = document.body.dataset;

// Forward ChatKit's events (errors, logs, responses, thread changes) to the backend.
backend.attach(chatkit);

function failed(error) {
  // error.code is the backend's error code (rate_limited, not_configured, network_error...).
  status.textContent = `Could not start the chat (${error.code}). ${error.message}`;
  status.dataset.state = "error";
  status.dataset.code = error.code;
}

customElements.whenDefined("openai-chatkit").then(() => {
  if (mode === "self_hosted") {
    // This backend is the ChatKit server: ChatKit posts every operation to /api/chatkit.
    // Attachments upload straight to /api/chatkit/attachments (apiConfig sets the direct upload strategy).
    chatkit.setOptions({
      api: backend.apiConfig(domainKey ? { domainKey } : {}),
      composer: { attachments: { enabled: true } },
    });
    status.textContent = "Connected.";
    status.dataset.state = "ready";
    return;
  }
  chatkit.setOptions({
    api: {
      async getClientSecret(current) {
        try {
          const secret = await backend.getClientSecret(current);
          status.textContent = "Connected.";
          status.dataset.state = "ready";
          return secret;
        } catch (error) {
          failed(error);
          throw error;
        }
      },
    },
  });
});
