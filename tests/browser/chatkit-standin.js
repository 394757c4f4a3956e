// A stand-in for ChatKit's <openai-chatkit> web component. The browser tests serve it in place of
// https://cdn.platform.openai.com/deployments/chatkit/chatkit.js. Like ChatKit, it asks the page for a
// client secret through options.api.getClientSecret (first with null, then with the current secret) and
// dispatches chatkit.* DOM events; the tests make it emit more events with emit().
class StandinChatKit extends HTMLElement {
  constructor() {
    super();
    this.secrets = [];
    this.failure = null;
  }

  setOptions(options) {
    this.options = options;
    this.started = this.start();
  }

  async start() {
    try {
      const first = await this.options.api.getClientSecret(null);
      this.secrets.push(first);
      const second = await this.options.api.getClientSecret(first);
      this.secrets.push(second);
      this.dataset.state = "ready";
      this.emit("chatkit.ready");
    } catch (error) {
      this.failure = {
        name: error?.name ?? null,
        code: error?.code ?? null,
        status: error?.status ?? null,
        requestId: error?.requestId ?? null,
        message: String(error?.message ?? error),
      };
      this.dataset.state = "failed";
      this.emit("chatkit.error", { error });
    }
  }

  emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }
}

customElements.define("openai-chatkit", StandinChatKit);
