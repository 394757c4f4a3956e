"""The warm-up turn gunicorn runs in each new worker (selfhosted/warmup.py): a whole turn, no model, no database."""

from __future__ import annotations

from sqlalchemy import func, select

from chatkit_backend.selfhosted.models import ITEMS, THREADS
from chatkit_backend.selfhosted.warmup import warm_turn


def test_the_warm_up_turn_answers_without_calling_the_model_or_writing_the_database(selfhosted_app, responses_standin):
    chatkit = selfhosted_app.extensions["chatkit_selfhosted"]
    chatkit.bridge.run(warm_turn(chatkit.settings), timeout=30)  # raises unless the canned answer came through
    chatkit.warm()
    assert responses_standin.requests() == []
    with chatkit.database.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(THREADS)).scalar() == 0
        assert connection.execute(select(func.count()).select_from(ITEMS)).scalar() == 0
