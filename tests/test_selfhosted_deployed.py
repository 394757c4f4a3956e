"""`POST /api/chatkit` as deployed: gunicorn with the shipped gunicorn.conf.py (gevent), nginx with deploy/nginx.conf.

Events reach the client as the model writes them (directly and through nginx), a client that leaves closes the
model's stream, many streams share one worker while the other routes stay fast, and threads survive a restart
(SQLite and PostgreSQL). The model is the Responses API stand-in (tests/responses_standin.py) on loopback.
"""

from __future__ import annotations

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.chatkit_http import add_message, open_stream, read_events, start_thread, thread_items
from tests.responses_standin import ResponsesStandin
from tests.selfhosted_support import new_message
from tests.servers import ROOT, gunicorn_server, nginx, selfhosted_env, send

pytestmark = pytest.mark.slow

DELTAS = 8
DELTA_DELAY_MS = 150
CONCURRENT_STREAMS = 100
# Slowest answer of /health, and of the routes that use the database (which the streams' writes share), while
# one worker streams. Measured on 2 loaded cores (load ~9): /health 0.06-0.13 s; /ready and analytics 0.1-0.2 s on
# SQLite, up to 1.0 s on PostgreSQL (30 pooled connections shared with 100 streams).
FAST_SECONDS = {"/health": 1.0, "/ready": 2.5, "/api/analytics/message": 2.5}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The stand-in, one gunicorn worker on SQLite, and nginx in front with gzip on for every type (as many sites)."""
    workdir = tmp_path_factory.mktemp("deployed")
    with ResponsesStandin(deltas=DELTAS) as standin:
        env = selfhosted_env(standin, f"sqlite:///{workdir / 'app.sqlite3'}", TRUSTED_PROXY_HOPS="1")
        with (
            gunicorn_server(env, workdir / "gunicorn.log") as server,
            nginx(server.url, workdir / "nginx", http_extra="gzip on; gzip_types *; gzip_min_length 1;") as proxy,
        ):
            yield server, proxy, standin


@pytest.fixture
def standin(stack):
    standin = stack[2]
    yield standin
    standin.set_delays(delta_delay_ms=0, first_delay_ms=0)


def _assert_incremental(answer) -> None:
    """The text deltas arrived about DELTA_DELAY_MS apart, not together at the end."""
    assert answer.outcome == "answer", answer
    deltas = [
        t
        for t, e in zip(answer.times, answer.events, strict=True)
        if e["type"] == "thread.item.updated" and e["update"]["type"] == "assistant_message.content_part.text_delta"
    ]
    assert len(deltas) == DELTAS
    # Delivered at the end, every delta would arrive within a few ms of the last event.
    assert answer.times[-1] - deltas[0] > (DELTAS - 2) * DELTA_DELAY_MS / 1000
    assert answer.times[0] - answer.started < 0.5 * (answer.ended - answer.started)  # thread.created came first


def test_events_reach_the_client_as_the_model_writes_them(stack, standin):
    server, _, _ = stack
    standin.set_delays(delta_delay_ms=DELTA_DELAY_MS)
    _assert_incremental(start_thread(server.url, "Stream to me"))


def test_events_arrive_through_nginx_before_the_stream_ends(stack, standin):
    _, proxy, _ = stack
    standin.set_delays(delta_delay_ms=DELTA_DELAY_MS)
    answer = start_thread(proxy, "Stream through nginx", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in answer.headers  # gzip would hold events back in its buffer
    _assert_incremental(answer)


def test_nginx_conf_serves_chatkit_unbuffered_with_a_read_timeout_for_long_answers():
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    block = re.search(r"location = /api/chatkit \{(.*?)\n    \}", conf, re.S)
    assert block, "deploy/nginx.conf has no `location = /api/chatkit` block"
    settings = dict(re.findall(r"^\s*(\w+) ([^;]+);", block.group(1), re.M))
    assert settings["proxy_buffering"] == "off"
    assert settings["gzip"] == "off"
    assert int(settings["proxy_read_timeout"].removesuffix("s")) >= 300
    assert settings["proxy_pass"] == "http://chatkit_backend"


@pytest.mark.parametrize("when", ["while the model writes", "while the model is silent"])
def test_a_client_that_leaves_closes_the_model_stream_within_a_second(stack, standin, when):
    server, _, _ = stack
    if when == "while the model writes":
        standin.set_delays(delta_delay_ms=300)
    else:
        standin.inject("hang", seconds=20)
    opened = len(standin.streams())
    connection, response = open_stream(server.url, "threads.create", {"input": new_message("I will leave")})
    try:
        assert response.status == 200
        for _, event in read_events(response):
            if event["type"] == "stream_options":
                break
        standin.wait_for_stream_state(opened, "open")
    finally:
        left = time.monotonic()
        response.close()  # the browser tab closes: the socket is closed, nothing more is read
        connection.close()
    record = standin.wait_for_stream_state(opened, "abandoned", timeout=5)
    assert record.ended_at - left < 1.2, f"the model stream stayed open {record.ended_at - left:.2f} s"


def _probe(url: str, stop: threading.Event, latencies: dict[str, list[float]]) -> None:
    """Call the service's other routes in turn until `stop`, recording how long each took."""
    calls = [("GET", "/health", None), ("GET", "/ready", None), ("POST", "/api/analytics/message", None)]
    count = 0
    while True:
        for method, path, _ in calls:
            count += 1
            body = json.dumps({"id": f"probe-{count}"}).encode() if method == "POST" else None
            asked = time.monotonic()
            answer = send(url, method, path, body=body, headers={"Content-Type": "application/json"}, timeout=10)
            assert answer.status == 200, (path, answer.body)
            latencies.setdefault(path, []).append(time.monotonic() - asked)
        if stop.wait(0.05):
            return


def _run_streams_and_probe(url: str, standin: ResponsesStandin, count: int):
    """`count` new threads at once while probing the other routes: (answers, probe latencies, most open at once)."""
    stop = threading.Event()
    stop.set()
    _probe(url, stop, {})  # each route once before: a worker's first call of a route is not what is measured
    stop.clear()
    latencies: dict[str, list[float]] = {}
    most_open = 0
    with ThreadPoolExecutor(count + 1) as pool:
        probe = pool.submit(_probe, url, stop, latencies)
        streams = [pool.submit(start_thread, url, f"message {i}", timeout=60) for i in range(count)]
        while not all(s.done() for s in streams):
            most_open = max(most_open, standin.open_streams)
            time.sleep(0.01)
        stop.set()
        probe.result()
        answers = [s.result() for s in streams]
    return answers, latencies, most_open


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_many_streams_share_one_worker_with_other_routes_fast_and_survive_a_restart(request, tmp_path, database):
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}" if database == "sqlite" else request.getfixturevalue("postgres_url")
    with ResponsesStandin(deltas=DELTAS, delta_delay_ms=200, record=False) as standin:
        env = selfhosted_env(standin, url)
        with gunicorn_server(env, tmp_path / "gunicorn.log") as server:
            assert len(server.worker_pids()) == 1
            answers, latencies, most_open = _run_streams_and_probe(server.url, standin, CONCURRENT_STREAMS)
            port = server.port
        outcomes = [a.outcome for a in answers]
        assert outcomes == ["answer"] * CONCURRENT_STREAMS
        assert most_open >= CONCURRENT_STREAMS // 2, f"only {most_open} streams were open at once"
        for path, seconds in latencies.items():
            assert max(seconds) < FAST_SECONDS[path], f"{path}: slowest {max(seconds):.2f} s during the streams"

        # A new master and worker on the same database and port: every thread is there, and its history reaches
        # the model; the fresh worker's first answer is not slowed by lazy imports (warmed before it took requests).
        standin.set_delays(delta_delay_ms=0)
        with gunicorn_server(env, tmp_path / "gunicorn.log", port=port) as server:
            for answer in answers:
                items = thread_items(server.url, answer.thread_id, answer.cookie)
                assert [i["type"] for i in items] == ["user_message", "assistant_message"]
                assert [i["id"] for i in items] == [i["id"] for i in answer.done_items]
            seen: list[str] = []
            standin.reply = lambda body: seen.append(str(body["input"])) or None
            first, second = (add_message(server.url, a.thread_id, "and now?", cookie=a.cookie) for a in answers[:2])
    assert first.outcome == second.outcome == "answer"
    assert "message 0" in seen[0]  # the history from before the restart
    assert "and now?" in seen[0]
    first_seconds, second_seconds = first.ended - first.started, second.ended - second.started
    assert first_seconds < second_seconds + 0.5, f"first answer {first_seconds:.2f} s, second {second_seconds:.2f} s"


@pytest.fixture
def postgres_url(postgres_server_url: str) -> str:
    from tests.conftest import _truncate_all

    _truncate_all(postgres_server_url)
    return postgres_server_url


def test_a_stream_longer_than_the_body_deadline_keeps_its_keep_alive_connection(tmp_path):
    # The request-body deadline (GUNICORN_REQUEST_BODY_TIMEOUT) is for receiving the request: an answer that
    # streams for longer once made gunicorn's drain of the finished body a 408, an ERROR line and a closed connection.
    with ResponsesStandin(deltas=4, delta_delay_ms=500) as standin:
        env = selfhosted_env(standin, f"sqlite:///{tmp_path / 'app.sqlite3'}", GUNICORN_REQUEST_BODY_TIMEOUT="1")
        log = tmp_path / "gunicorn.log"
        with gunicorn_server(env, log) as server:
            connection, response = open_stream(server.url, "threads.create", {"input": new_message("a long answer")})
            events = [event for _, event in read_events(response)]
            assert events[-1]["type"] != "error"
            connection.request("GET", "/health")  # the same connection, after 2 s of streaming
            assert connection.getresponse().status == 200
            connection.close()
        assert "Error handling request" not in log.read_text()
