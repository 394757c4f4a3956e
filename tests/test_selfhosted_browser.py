"""The browser helper against the self-hosted server in headless Chromium: direct uploads and identity, same origin.

ChatKit's own script is not reachable here; the page does what ChatKit does with the helper's `apiConfig()`:
a direct upload to `uploadStrategy.uploadUrl` through `api.fetch`, then `threads.create` with the attachment's
id. The answer coming back (not a 404) shows the upload and the message were the same user's.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.browser_support import LiveServer, launch_chromium, require_playwright
from tests.selfhosted_support import selfhosted_config
from tests.test_selfhosted_uploads import PNG

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

UPLOAD_AND_SEND = """
async ({ png, text }) => {
  const { createChatKitBackend } = await import("/static/chatkit-backend.js");
  const backend = createChatKitBackend();
  const api = backend.apiConfig();
  const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
  const form = new FormData();
  form.append("file", new Blob([bytes], { type: "image/png" }), "dot.png");
  // What ChatKit does with uploadStrategy {type: "direct"}: POST the file to uploadUrl.
  const uploaded = await (await api.fetch(api.uploadStrategy.uploadUrl, { method: "POST", body: form })).json();
  const viaHelper = await backend.uploadFile(new Blob([bytes], { type: "image/png" }), "second.png");
  let refused = null;
  try {
    await backend.uploadFile(new Blob(["MZ\\x90\\x00"], { type: "image/png" }), "evil.png");
  } catch (error) {
    refused = { code: error.code, status: error.status };
  }
  const image = new Image();
  image.src = uploaded.preview_url;
  await image.decode();
  const body = {
    type: "threads.create",
    params: { input: { content: [{ type: "input_text", text }], attachments: [uploaded.id], inference_options: {} } },
  };
  const answer = await api.fetch(api.url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return {
    strategy: api.uploadStrategy,
    uploaded,
    viaHelper,
    refused,
    previewWidth: image.naturalWidth,
    status: answer.status,
    stream: await answer.text(),
  };
}
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    sync_playwright = require_playwright()
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.on("console", lambda message: print(f"console.{message.type}: {message.text}"))
    yield page
    context.close()


def test_the_helper_uploads_directly_and_sends_the_attachment_as_the_same_user(make_app, responses_standin, page):
    server = LiveServer(make_app(selfhosted_config(responses_standin)))
    try:
        page.goto(f"{server.url}/health")
        result = page.evaluate(UPLOAD_AND_SEND, {"png": base64.b64encode(PNG).decode(), "text": "What is this?"})
        cookies = {cookie["name"] for cookie in page.context.cookies()}
    finally:
        server.stop()

    assert result["strategy"] == {"type": "direct", "uploadUrl": f"{server.url}/api/chatkit/attachments"}
    assert (result["uploaded"]["type"], result["uploaded"]["name"]) == ("image", "dot.png")
    assert result["viaHelper"]["mime_type"] == "image/png"
    assert result["refused"] == {"code": "unsupported_media_type", "status": 415}
    assert result["previewWidth"] == 1
    assert result["status"] == 200
    assert '"type":"thread.created"' in result["stream"]
    assert "chatkit_uid" in cookies
    [user_message] = [i for i in responses_standin.requests()[-1].body["input"] if i.get("role") == "user"]
    assert user_message["content"][1]["type"] == "input_image"
