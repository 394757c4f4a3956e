"""Fixtures of the self-hosted ChatKit tests: a loopback Responses API (tests/responses_standin.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.responses_standin import ResponsesStandin


@pytest.fixture
def responses_standin() -> Iterator[ResponsesStandin]:
    """A Responses API on loopback for one test: scripted replies, recorded requests and streams, injected faults."""
    with ResponsesStandin() as standin:
        yield standin
