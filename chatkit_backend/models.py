"""Imports every table module so that `metadata` knows the whole schema (Alembic, tests)."""

from chatkit_backend.admin.models import ADMIN_REVOKED_COOKIES
from chatkit_backend.analytics.models import ERRORS, EVENTS, GROUPS
from chatkit_backend.selfhosted.models import ATTACHMENT_BLOBS, ATTACHMENTS, FEEDBACK, ITEMS, THREADS, TURNS
from chatkit_backend.sessions.models import SESSIONS

__all__ = [
    "ADMIN_REVOKED_COOKIES",
    "ATTACHMENTS",
    "ATTACHMENT_BLOBS",
    "ERRORS",
    "EVENTS",
    "FEEDBACK",
    "GROUPS",
    "ITEMS",
    "SESSIONS",
    "THREADS",
    "TURNS",
]
