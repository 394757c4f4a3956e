"""Client event ids are unique per sender, not globally: (scope, event_key) instead of event_key.

Existing rows are kept, in the legacy scope ''. On SQLite the tables are rebuilt (batch mode) with
their rows; on PostgreSQL the column and constraints are altered in place.

Revision ID: 0004_event_id_scope
Revises: 0003_chatkit_store
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_event_id_scope"
down_revision: str | None = "0003_chatkit_store"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("analytics_events", "analytics_error_reports")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("scope", sa.String(32), nullable=False, server_default=""))
            batch.drop_constraint(f"uq_{table}_event_key", type_="unique")
            batch.create_unique_constraint(f"uq_{table}_scope_event_key", ["scope", "event_key"])


def downgrade() -> None:
    # Fails (and changes nothing on PostgreSQL) when two senders stored the same client id since.
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"uq_{table}_scope_event_key", type_="unique")
            batch.create_unique_constraint(f"uq_{table}_event_key", ["event_key"])
            batch.drop_column("scope")
