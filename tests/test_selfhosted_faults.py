"""The fault matrix of `POST /api/chatkit` under real gunicorn (shipped config, gevent): tests, not benchmarks.

The model fails mid-load (500, 429 with Retry-After, cut streams, hangs past the model timeout, failed and
error events); PostgreSQL is cut through a TCP proxy during streams and restored; gunicorn gets SIGTERM during
streams; clients leave in bulk. Every stream ends with the answer or ChatKit's `error` event, nothing the
service acknowledged is lost, and nothing leaks.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy.exc import OperationalError

from chatkit_backend.errors import ApiError
from tests.chatkit_http import chatkit_json, open_stream, read_events, start_thread, thread_items
from tests.responses_standin import ResponsesStandin
from tests.selfhosted_support import new_message
from tests.servers import ROOT, gunicorn_server, open_sockets, selfhosted_env, send
from tests.tcp_proxy import TcpProxy

MODEL_TIMEOUT = 3
DIAGNOSTICS_CONFIG = ROOT / "tests" / "gunicorn_diagnostics.py"


def _poll(condition, timeout: float, message):
    """Poll `condition()` (bounded) until it returns something truthy; that value. `message` may be a callable."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(message() if callable(message) else message)
        time.sleep(0.02)
    return value


def _assert_nothing_lost(url: str, answers) -> int:
    """Every item a stream reported done is in its thread; returns how many items were checked."""
    checked = 0
    for answer in answers:
        if answer.thread_id is None:
            continue
        stored = {item["id"] for item in thread_items(url, answer.thread_id, answer.cookie)}
        done = [item["id"] for item in answer.done_items]
        assert set(done) <= stored, f"thread {answer.thread_id}: acknowledged {done}, stored {sorted(stored)}"
        checked += len(done)
    return checked


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory):
    """The stand-in and one gunicorn worker (SQLite, a 3 s model timeout) that reports its greenlets on SIGWINCH."""
    workdir = tmp_path_factory.mktemp("faults")
    diagnostics = workdir / "diagnostics"
    diagnostics.mkdir()
    with ResponsesStandin(deltas=6, delta_delay_ms=50) as standin:
        env = selfhosted_env(
            standin,
            f"sqlite:///{workdir / 'app.sqlite3'}",
            CHATKIT_MODEL_TIMEOUT=str(MODEL_TIMEOUT),
            GUNICORN_DIAGNOSTICS_DIR=str(diagnostics),
        )
        with gunicorn_server(env, workdir / "gunicorn.log", config=DIAGNOSTICS_CONFIG) as server:
            yield server, standin, diagnostics


@pytest.mark.slow
def test_model_faults_under_load_end_every_stream_with_the_answer_or_an_error_event(fault_stack):
    server, standin, _ = fault_stack
    streams, before = 120, len(standin.requests())
    faults = [
        ("status", {"status": 500}),
        ("status", {"status": 429, "retry_after": "3"}),
        ("cut", {"after_deltas": 2}),
        ("hang", {"seconds": 30}),  # past the 3 s model timeout
        ("failed", {"after_deltas": 1}),
        ("error_event", {"after_deltas": 1}),
    ]
    per_kind = 8
    with ThreadPoolExecutor(streams) as pool:
        answers = [pool.submit(start_thread, server.url, f"load {i}") for i in range(streams)]
        standin.wait_for_requests(before + 20, timeout=30)  # mid-load: the model starts failing now
        for kind, options in faults:
            standin.inject(kind, times=per_kind, **options)
        answers = [a.result() for a in answers]
    assert not standin.state.faults, "every injected fault was played"
    outcomes = [a.outcome for a in answers]
    assert set(outcomes) <= {"answer", "error"}, outcomes
    assert outcomes.count("error") == len(faults) * per_kind, [
        (a.outcome, a.events[-1]) for a in answers if a.outcome == "error"
    ]
    assert all(a.status == 200 for a in answers)  # no 5xx: failures are ChatKit events
    # No user message lost: each thread holds its user message, and each error'd thread nothing half-written.
    for answer in answers:
        items = thread_items(server.url, answer.thread_id, answer.cookie)
        assert items[0]["type"] == "user_message"
        assert items[0]["content"][0]["text"] == answer.done_items[0]["content"][0]["text"]
    assert _assert_nothing_lost(server.url, answers) >= streams
    assert send(server.url, "GET", "/health").status == 200
    # Failed turns leave no task behind on the worker's event loop.
    (worker,) = server.worker_pids()
    _poll(lambda: _worker_counts(worker, fault_stack[2])["tasks"] == 0, 5, "tasks of failed turns stayed pending")


def _worker_counts(pid: int, diagnostics: Path) -> dict[str, int]:
    """The worker's live greenlets and pending event-loop tasks (tests/gunicorn_diagnostics.py)."""
    target = diagnostics / f"{pid}.json"
    target.unlink(missing_ok=True)
    os.kill(pid, signal.SIGWINCH)
    _poll(target.exists, 5, "the worker did not report its counts")
    return json.loads(target.read_text())


@pytest.mark.slow
def test_clients_leaving_in_bulk_close_every_model_stream_and_leak_nothing(fault_stack):
    server, standin, diagnostics = fault_stack
    (worker,) = server.worker_pids()
    clients = 100
    standin.set_delays(delta_delay_ms=500)  # ~3 s answers: every client leaves mid-answer
    try:
        _poll(lambda: standin.open_streams == 0, 10, "streams of an earlier test still open")
        counts_before = _worker_counts(worker, diagnostics)
        sockets_before = open_sockets(worker)
        first_stream = len(standin.streams())
        all_open = threading.Barrier(clients + 1, timeout=30)

        def leave_mid_answer(i: int) -> None:
            connection, response = open_stream(server.url, "threads.create", {"input": new_message(f"leave {i}")})
            try:
                for _, event in read_events(response):
                    if event["type"] == "stream_options":
                        break
                all_open.wait()  # every model stream runs; now every browser goes at once
            finally:
                response.close()
                connection.close()

        with ThreadPoolExecutor(clients) as pool:
            left = [pool.submit(leave_mid_answer, i) for i in range(clients)]
            _poll(lambda: standin.open_streams >= clients, 30, "the model streams did not all open")
            all_open.wait()
            gone_at = time.monotonic()
            for future in left:
                future.result()
        _poll(lambda: standin.open_streams == 0, 5, "model streams stayed open after their clients left")
        closed_within = time.monotonic() - gone_at
        records = standin.streams()[first_stream:]
        assert len(records) == clients
        assert {r.state for r in records} == {"abandoned"}
        assert closed_within < 3, f"the last model stream closed {closed_within:.2f} s after its client left"
        assert open_sockets(worker, standin.port) == 0 or open_sockets(worker, standin.port) <= sockets_before
        # The handlers' greenlets, the pump tasks and the sockets are all gone again.
        seen: list[tuple[int, int]] = []

        def back_to_before() -> bool:
            counts = _worker_counts(worker, diagnostics)
            seen.append((counts["greenlets"], counts["tasks"]))
            return seen[-1] == (counts_before["greenlets"], counts_before["tasks"])

        _poll(back_to_before, 5, lambda: f"greenlets, tasks leaked: {counts_before} before, {seen[-3:]} after")
        _poll(lambda: open_sockets(worker) <= sockets_before, 5, "sockets leaked")
    finally:
        standin.set_delays(delta_delay_ms=50)


def test_an_unreachable_database_is_a_503_with_retry_after():
    from chatkit_backend.selfhosted.server import contract_error

    error = contract_error(OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused")))
    assert isinstance(error, ApiError)
    assert (error.status, error.code, error.headers["Retry-After"]) == (503, "database_unavailable", "5")


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_cut_during_streams_fails_clearly_loses_nothing_and_recovers(tmp_path, postgres_server_url):
    from tests.conftest import _truncate_all

    _truncate_all(postgres_server_url)
    parts = urlsplit(postgres_server_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    via_proxy = urlunsplit(parts._replace(netloc=f"{parts.username}@{proxy.url_host}"))
    streams = 40
    with ResponsesStandin(deltas=8, delta_delay_ms=100, record=False) as standin:
        env = selfhosted_env(standin, via_proxy)
        with gunicorn_server(env, tmp_path / "gunicorn.log") as server:
            with ThreadPoolExecutor(streams) as pool:
                during = [pool.submit(start_thread, server.url, f"cut {i}") for i in range(streams)]
                _poll(lambda: standin.open_streams >= streams // 2, 30, "the streams did not start")
                proxy.cut()
                down = start_thread(server.url, "while the database is down")
                read_status, read_body = chatkit_json(server.url, "threads.list", {}, cookie=down.cookie)
                during = [a.result() for a in during]
                proxy.restore()
            # Recovered without a restart: the pool reconnects.
            after = _poll(
                lambda: (a := start_thread(server.url, "after the restore")).outcome == "answer" and a,
                15,
                "the service did not recover",
            )
            checked = _assert_nothing_lost(server.url, [*during, after])
    proxy.cut()
    assert down.status == 503, down
    body = json.loads(down.body)
    assert body["error"]["code"] == "database_unavailable"
    assert down.headers["retry-after"] == "5"
    assert (read_status, read_body["error"]["code"]) == (503, "database_unavailable")
    outcomes = [a.outcome for a in during]
    assert set(outcomes) <= {"answer", "error", "status 503"}, outcomes
    assert "error" in outcomes  # streams cut mid-answer say so with ChatKit's error event
    assert checked >= 1


@pytest.mark.slow
def test_sigterm_lets_streams_finish_and_refuses_new_ones(tmp_path):
    streams = 30
    with ResponsesStandin(deltas=10, delta_delay_ms=200, record=False) as standin:
        env = selfhosted_env(standin, f"sqlite:///{tmp_path / 'app.sqlite3'}")
        with gunicorn_server(env, tmp_path / "gunicorn.log") as server, ThreadPoolExecutor(streams + 1) as pool:
            running = [pool.submit(start_thread, server.url, f"finish {i}") for i in range(streams)]
            _poll(lambda: standin.open_streams >= streams, 30, "the streams did not start")
            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            accepted_after = []

            def refused() -> bool:
                try:
                    socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
                except ConnectionRefusedError:
                    return True
                accepted_after.append(pool.submit(start_thread, server.url, "late"))
                return False

            _poll(refused, 3, "gunicorn kept accepting connections after SIGTERM")
            refused_after = time.monotonic() - signalled
            answers = [a.result() for a in running]
            server.process.wait(timeout=25)
            stopped_after = time.monotonic() - signalled
            late = [a.result() for a in accepted_after]
    assert [a.outcome for a in answers] == ["answer"] * streams
    assert refused_after < 2
    assert stopped_after < 20  # graceful_timeout
    assert server.process.returncode == 0
    # A request that reached the worker before it closed its listener is answered, not dropped.
    assert all(a.outcome == "answer" or (a.transport_error and "Refused" in a.transport_error) for a in late), late
