"""POST /api/chatkit/attachments: ChatKit's direct upload, the bytes' storage, ownership, and the model's view of it.

Runs on SQLite and PostgreSQL (`database_url`), with the bytes in the database or a folder.
"""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from chatkit_backend.selfhosted.models import ATTACHMENT_BLOBS, ATTACHMENTS
from chatkit_backend.selfhosted.uploads import sniff
from tests.selfhosted_support import chatkit_post, events_of, new_message, selfhosted_config

# A 1x1 PNG (valid header and chunks).
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture(params=["database", "folder"])
def upload_app(request, make_app, responses_standin, database_url, tmp_path):
    config = {**selfhosted_config(responses_standin), "DATABASE_URL": database_url}
    if request.param == "folder":
        config["CHATKIT_UPLOAD_FOLDER"] = str(tmp_path / "uploads")
    return make_app(config)


def multipart(field: str, data: bytes, name: str, content_type: str) -> tuple[bytes, str]:
    """A multipart/form-data body as a browser sends it (built here: werkzeug's builder leaves a temp file open)."""
    boundary = "----chatkit-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _upload(client, data: bytes, name: str = "photo.png", content_type: str = "image/png", field: str = "file"):
    body, mimetype = multipart(field, data, name, content_type)
    return client.post("/api/chatkit/attachments", data=body, content_type=mimetype)


def _message_with(attachment_id: str, text: str = "What is this?") -> dict:
    return {**new_message(text), "attachments": [attachment_id]}


def _blob_count(app) -> int:
    with app.extensions["chatkit_db"].engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(ATTACHMENT_BLOBS)).scalar_one()


def _stored_bytes(app, tmp_path) -> int:
    folder = app.config["SETTINGS"].upload_folder
    return len(list((tmp_path / "uploads").iterdir())) if folder else _blob_count(app)


def test_an_image_upload_answers_chatkits_attachment_and_its_signed_preview(upload_app):
    client = upload_app.test_client()

    answer = _upload(client, PNG, name="../../etc/cat.png")

    assert answer.status_code == 200
    body = answer.get_json()
    assert set(body) == {"id", "name", "mime_type", "type", "preview_url"}
    assert (body["name"], body["mime_type"], body["type"]) == ("cat.png", "image/png", "image")
    assert body["id"].startswith("atc_")
    preview = urlsplit(body["preview_url"])
    image = upload_app.test_client().get(f"{preview.path}?{preview.query}")  # no cookie: ChatKit's frame
    assert image.status_code == 200
    assert (image.mimetype, image.data) == ("image/png", PNG)
    forged = upload_app.test_client().get(f"{preview.path}?sig={'0' * 32}")
    assert forged.status_code == 404
    non_ascii = upload_app.test_client().get(f"{preview.path}?sig=%C3%A9")  # found by the fuzzer: was a 500
    assert non_ascii.status_code == 404
    assert upload_app.test_client().get("/api/chatkit/attachments/%C3%A9/preview?sig=x").status_code == 404


def test_an_image_reaches_the_model_as_an_image(upload_app, responses_standin):
    client = upload_app.test_client()
    attachment = _upload(client, PNG).get_json()

    answer = chatkit_post(client, "threads.create", {"input": _message_with(attachment["id"])})

    assert answer.status_code == 200
    [message] = [item for item in responses_standin.requests()[-1].body["input"] if item.get("role") == "user"]
    assert message["content"][0] == {"type": "input_text", "text": "What is this?"}
    assert message["content"][1] == {
        "type": "input_image",
        "image_url": "data:image/png;base64," + base64.b64encode(PNG).decode(),
        "detail": "auto",
    }


def test_documents_reach_the_model_as_a_file_or_as_text(upload_app, responses_standin):
    client = upload_app.test_client()
    pdf = _upload(client, PDF, name="terms.pdf", content_type="application/pdf").get_json()
    text = _upload(client, "Line one\nligne deux é\n".encode(), name="notes.txt", content_type="text/plain").get_json()
    assert (pdf["type"], pdf["mime_type"], text["mime_type"]) == ("file", "application/pdf", "text/plain")

    message = {**new_message("Summarise"), "attachments": [pdf["id"], text["id"]]}
    chatkit_post(client, "threads.create", {"input": message})

    [sent] = [item for item in responses_standin.requests()[-1].body["input"] if item.get("role") == "user"]
    assert sent["content"][1] == {
        "type": "input_file",
        "filename": "terms.pdf",
        "file_data": "data:application/pdf;base64," + base64.b64encode(PDF).decode(),
    }
    assert sent["content"][2] == {"type": "input_text", "text": "Attached file notes.txt:\nLine one\nligne deux é\n"}


def test_a_file_over_the_limit_is_413(make_app, responses_standin):
    app = make_app(selfhosted_config(responses_standin), CHATKIT_UPLOAD_MAX_BYTES="2048")
    client = app.test_client()

    assert _upload(client, PNG + b"\0" * (2048 - len(PNG))).status_code == 200
    over = _upload(client, PNG + b"\0" * 2049)
    way_over = _upload(client, PNG + b"\0" * (300 * 1024))  # past the request limit: refused before it is read

    assert over.status_code == 413
    assert over.get_json()["error"]["code"] == "payload_too_large"
    assert "CHATKIT_UPLOAD_MAX_BYTES" in over.get_json()["error"]["message"]
    assert way_over.status_code == 413
    assert way_over.get_json()["error"]["code"] == "payload_too_large"


def test_uploads_may_exceed_max_content_length_up_to_their_own_limit(make_app, responses_standin):
    app = make_app(selfhosted_config(responses_standin), MAX_CONTENT_LENGTH="4096")
    big = PNG + b"\0" * (1024 * 1024 + 10)
    assert _upload(app.test_client(), big).status_code == 200
    assert app.test_client().post("/api/chatkit", data=b"x" * 8192, content_type="application/json").status_code == 413


@pytest.mark.parametrize(
    ("data", "name", "declared"),
    [
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", "setup.png", "image/png"),  # an executable named as an image
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>\x00", "a.svg", "image/svg+xml"),
        (b"PK\x03\x04\x14\x00\x00\x00", "doc.pdf", "application/pdf"),  # a zip claiming to be a PDF
    ],
)
def test_a_type_outside_the_allow_list_is_415_judged_by_content(upload_app, data, name, declared):
    answer = _upload(upload_app.test_client(), data, name=name, content_type=declared)
    assert answer.status_code == 415
    assert answer.get_json()["error"]["code"] == "unsupported_media_type"


def test_the_allow_list_is_a_setting(make_app, responses_standin):
    app = make_app(selfhosted_config(responses_standin), CHATKIT_UPLOAD_TYPES="application/pdf")
    assert _upload(app.test_client(), PNG).status_code == 415
    assert _upload(app.test_client(), PDF, name="a.pdf").status_code == 200


def test_an_upload_needs_multipart_with_a_file_field(upload_app):
    client = upload_app.test_client()
    assert client.post("/api/chatkit/attachments", json={"file": "x"}).status_code == 415
    missing = _upload(client, PNG, field="other")
    assert missing.status_code == 400
    assert missing.get_json()["error"]["details"] == [{"field": "file", "message": "is required"}]


def test_another_users_attachment_is_refused_and_never_reaches_the_model(upload_app, responses_standin):
    owner, stranger = upload_app.test_client(), upload_app.test_client()
    attachment = _upload(owner, PNG).get_json()
    thread_id = events_of(chatkit_post(stranger, "threads.create", {"input": new_message("Hi")}))[0]["thread"]["id"]
    calls = len(responses_standin.requests())

    created = chatkit_post(stranger, "threads.create", {"input": _message_with(attachment["id"])})
    added = chatkit_post(
        stranger, "threads.add_user_message", {"thread_id": thread_id, "input": _message_with(attachment["id"])}
    )
    deleted = chatkit_post(stranger, "attachments.delete", {"attachment_id": attachment["id"]})

    assert [created.status_code, added.status_code, deleted.status_code] == [404, 404, 404]
    assert created.get_json()["error"]["code"] == "not_found"
    assert len(responses_standin.requests()) == calls
    assert len(chatkit_post(stranger, "threads.list", {}).get_json()["data"]) == 1  # no empty thread was left
    assert chatkit_post(owner, "threads.create", {"input": _message_with(attachment["id"])}).status_code == 200


def test_deleting_an_attachment_or_its_thread_deletes_the_bytes(upload_app, tmp_path):
    client = upload_app.test_client()
    loose = _upload(client, PNG).get_json()
    sent = _upload(client, PDF, name="a.pdf").get_json()
    thread_id = events_of(chatkit_post(client, "threads.create", {"input": _message_with(sent["id"])}))[0]["thread"][
        "id"
    ]
    assert _stored_bytes(upload_app, tmp_path) == 2

    assert chatkit_post(client, "attachments.delete", {"attachment_id": loose["id"]}).get_json() == {}
    assert _stored_bytes(upload_app, tmp_path) == 1
    assert chatkit_post(client, "threads.delete", {"thread_id": thread_id}).get_json() == {}

    assert _stored_bytes(upload_app, tmp_path) == 0
    with upload_app.extensions["chatkit_db"].engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ATTACHMENTS)).scalar_one() == 0


def test_a_deleted_attachment_in_the_history_reaches_the_model_as_a_note(upload_app, responses_standin):
    client = upload_app.test_client()
    attachment = _upload(client, PNG).get_json()
    events = events_of(chatkit_post(client, "threads.create", {"input": _message_with(attachment["id"])}))
    chatkit_post(client, "attachments.delete", {"attachment_id": attachment["id"]})

    chatkit_post(
        client, "threads.add_user_message", {"thread_id": events[0]["thread"]["id"], "input": new_message("And?")}
    )

    first = next(item for item in responses_standin.requests()[-1].body["input"] if item.get("role") == "user")
    assert first["content"][1] == {"type": "input_text", "text": "[The attached file photo.png was deleted.]"}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PNG, "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (PDF, "application/pdf"),
        ("plain text, ünïcode\n\ttabbed".encode(), "text/plain"),
        (b"\xff\xfe\x00\x00", None),
        (b"text with a NUL \x00", None),
        (b"", None),
    ],
)
def test_sniff_judges_by_content(data, expected):
    assert sniff(data) == expected
