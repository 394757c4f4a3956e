"""Imports every table module so that `Base.metadata` knows the whole schema (Alembic, tests)."""

from chatkit_backend.analytics.models import AnalyticsEvent, ErrorGroup, ErrorReport
from chatkit_backend.sessions.models import IssuedSession

__all__ = ["AnalyticsEvent", "ErrorGroup", "ErrorReport", "IssuedSession"]
