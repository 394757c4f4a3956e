"""Session routes. Filled in by the session bootstrap work (issue 3)."""

from flask import Blueprint

bp = Blueprint("sessions", __name__, url_prefix="/api/chatkit")
