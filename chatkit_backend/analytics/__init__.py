"""Analytics events and frontend error reports forwarded by the page."""

from chatkit_backend.analytics import cli, ingest
from chatkit_backend.analytics.routes import bp

bp.record_once(lambda state: ingest.init_app(state.app))
cli.register(bp)

__all__ = ["bp"]
