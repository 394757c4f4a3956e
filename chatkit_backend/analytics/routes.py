"""Analytics routes. Filled in by the analytics work (issue 4)."""

from flask import Blueprint

bp = Blueprint("analytics", __name__, url_prefix="/api")
