// A page on another origin than the backend (?backend=<url>): imports the helper from the backend itself,
// as docs/frontend.md shows, and wires the ChatKit element with it.
const backendUrl = new URLSearchParams(location.search).get("backend");
const { createChatKitBackend } = await import(`${backendUrl}/static/chatkit-backend.js`);

const backend = createChatKitBackend({ baseUrl: backendUrl });
window.backend = backend; // the tests call backend.flush()
const chatkit = document.getElementById("chat");
backend.attach(chatkit);
await customElements.whenDefined("openai-chatkit");
chatkit.setOptions({ api: { getClientSecret: backend.getClientSecret } });
