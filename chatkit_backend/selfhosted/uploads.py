"""Uploaded files: what their bytes are (judged by content), where the bytes live, and signed preview links.

The bytes live in the database (`chatkit_attachment_blobs`) unless CHATKIT_UPLOAD_FOLDER names a
folder. Callers check ownership through the attachment record first (`SqlStore.load_attachment`);
the blob stores only keep and hand back bytes by attachment id. Nothing here imports ChatKit.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import delete, insert, select

from chatkit_backend.config import Settings
from chatkit_backend.db import Database
from chatkit_backend.selfhosted.models import ATTACHMENT_BLOBS

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
# Ids are ours (`atc_` + 32 hex digits); anything else never becomes a file name.
SAFE_ID = re.compile(r"^atc_[0-9a-f]{32}$")
# Control characters that do not occur in plain text (tab, newline, form feed and carriage return do).
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def sniff(data: bytes) -> str | None:
    """The type `data` is by its first bytes: an image, a PDF or UTF-8 text; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "text/plain" if text and not _NOT_TEXT.search(text) else None


def preview_signature(secret_key: str, attachment_id: str) -> str:
    """The signature a preview link carries: whoever was handed the link may see that one image."""
    key = hashlib.sha256(b"chatkit-attachment-preview:" + secret_key.encode()).digest()
    return hmac.new(key, attachment_id.encode(), hashlib.sha256).hexdigest()[:32]


def preview_signature_is_valid(secret_key: str, attachment_id: str, signature: str) -> bool:
    """True for the link's own signature; any other id or text (non-ASCII included) is simply not valid."""
    if not SAFE_ID.match(attachment_id):
        return False
    expected = preview_signature(secret_key, attachment_id).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))


class BlobStore(Protocol):
    """Where upload bytes live. `put` is durable when it returns; `delete` ignores ids it does not hold."""

    def put(self, attachment_id: str, owner: str, data: bytes) -> None: ...

    def get(self, attachment_id: str) -> bytes | None: ...

    def delete(self, attachment_ids: list[str]) -> None: ...


class DatabaseBlobs:
    """Bytes in `chatkit_attachment_blobs` (the default: backed up with everything else)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def put(self, attachment_id: str, owner: str, data: bytes) -> None:
        row = {"id": attachment_id, "owner": owner, "created_at": datetime.now(UTC), "data": data}
        self.database.write(lambda connection: connection.execute(insert(ATTACHMENT_BLOBS).values(**row)))

    def get(self, attachment_id: str) -> bytes | None:
        with self.database.engine.connect() as connection:
            return connection.execute(
                select(ATTACHMENT_BLOBS.c.data).where(ATTACHMENT_BLOBS.c.id == attachment_id)
            ).scalar()

    def delete(self, attachment_ids: list[str]) -> None:
        if attachment_ids:
            statement = delete(ATTACHMENT_BLOBS).where(ATTACHMENT_BLOBS.c.id.in_(attachment_ids))
            self.database.write(lambda connection: connection.execute(statement))


class FolderBlobs:
    """Bytes as files in one folder (a mounted volume shared by every worker), written atomically."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, attachment_id: str) -> Path:
        if not SAFE_ID.match(attachment_id):
            raise ValueError("not an attachment id of this service")
        return self.folder / attachment_id

    def put(self, attachment_id: str, owner: str, data: bytes) -> None:
        target = self._path(attachment_id)
        fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, attachment_id: str) -> bytes | None:
        try:
            return self._path(attachment_id).read_bytes()
        except (FileNotFoundError, ValueError):
            return None

    def delete(self, attachment_ids: list[str]) -> None:
        for attachment_id in attachment_ids:
            if SAFE_ID.match(attachment_id):
                self._path(attachment_id).unlink(missing_ok=True)


def blob_store(settings: Settings, database: Database) -> BlobStore:
    """The blob store the settings choose: CHATKIT_UPLOAD_FOLDER, else the database."""
    return FolderBlobs(settings.upload_folder) if settings.upload_folder else DatabaseBlobs(database)
