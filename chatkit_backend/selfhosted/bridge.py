"""The one door between Flask's synchronous views and ChatKit's async world.

One asyncio event loop per process. Under gunicorn's gevent workers the loop runs in a greenlet on
the worker's only OS thread (threading is patched), its selector waits through the gevent hub, and
views wait for it cooperatively; elsewhere (the Flask test client, `flask run`) it runs in a daemon
thread. Everything on the far side receives what it needs as arguments, never Flask's globals.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import select
import socket
import sys
import threading
import time
from collections.abc import AsyncIterable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# How often a silent stream checks whether its client is still there (a hung model never writes).
CLIENT_CHECK_SECONDS = 0.5


def _under_gevent() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("threading")


class _GreenletExecutor(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor under gevent: each call runs in a greenlet (store queries, DNS).

    asyncio requires a ThreadPoolExecutor; a real thread would hand gevent objects across threads.
    """

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        import gevent

        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                future.set_exception(exc)

        gevent.spawn(run)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass


class _FairLoop(asyncio.SelectorEventLoop):
    """An event loop that lets the gevent hub (every other request of the worker) run between its slices.

    A plain loop runs every ready callback before it looks at I/O again: with hundreds of streams
    one pass takes long enough to stall `/health`. This one runs at most MAX_CALLBACKS per pass and
    yields to the hub whenever it has held the thread for SLICE_SECONDS.
    """

    MAX_CALLBACKS = 16
    SLICE_SECONDS = 0.002

    def __init__(self) -> None:
        super().__init__()
        import gevent

        self._yield = gevent.sleep
        self._slice_started = time.perf_counter()

    def _run_once(self) -> None:
        ready = self._ready  # type: ignore[attr-defined]
        held = [ready.pop() for _ in range(len(ready) - self.MAX_CALLBACKS)] if len(ready) > self.MAX_CALLBACKS else ()
        super()._run_once()  # type: ignore[misc]
        if held:
            ready.extendleft(held)  # back in front of what this pass scheduled, in their order
        if time.perf_counter() - self._slice_started > self.SLICE_SECONDS:
            self._yield(0)
            self._slice_started = time.perf_counter()


class AsyncBridge:
    """Runs coroutines and async streams on this process's event loop, started on first use (after fork)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self.gevent = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._pid != os.getpid():
            with self._lock:
                if self._loop is None or self._pid != os.getpid():
                    self._start()
        assert self._loop is not None
        return self._loop

    def _start(self) -> None:
        self.gevent = _under_gevent()
        loop = _FairLoop() if self.gevent else asyncio.new_event_loop()
        if self.gevent:
            loop.set_default_executor(_GreenletExecutor())
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        threading.Thread(target=run, name="chatkit-event-loop", daemon=True).start()
        ready.wait()
        self._loop, self._pid = loop, os.getpid()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coroutine` on the loop and wait for its result (cooperatively under gevent)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stream(self, source: AsyncIterable[bytes], client_gone: Callable[[], bool] | None = None) -> ChunkStream:
        """A WSGI iterable of `source`'s chunks; closing it (the client left) cancels `source` on the loop."""
        return ChunkStream(self, source, client_gone)


_END = object()


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class ChunkStream:
    """Chunks produced on the loop, consumed by the WSGI server's iteration.

    A pump task on the loop puts each chunk on a queue as it is produced. `close()` (the WSGI server
    calls it when the client goes away or the answer ends) cancels the task, so ChatKit sees
    `CancelledError` where it is waiting and the model's stream is closed. A stream that stays
    silent checks `client_gone` every CLIENT_CHECK_SECONDS, so a hung model is also cancelled.
    """

    def __init__(self, bridge: AsyncBridge, source: AsyncIterable[bytes], client_gone: Callable[[], bool] | None):
        loop = bridge.loop
        if bridge.gevent:
            from gevent.queue import SimpleQueue

            self._queue: Any = SimpleQueue()
        else:
            self._queue = queue.SimpleQueue()
        self._client_gone = client_gone
        self._closed = False
        self._future = asyncio.run_coroutine_threadsafe(self._pump(source), loop)

    async def _pump(self, source: AsyncIterable[bytes]) -> None:
        put = self._queue.put_nowait
        try:
            async for chunk in source:
                put(chunk)
        except asyncio.CancelledError:
            put(_END)
            raise
        except BaseException as exc:  # noqa: BLE001 - re-raised on the consumer's side
            put(_Failed(exc))
            return
        put(_END)

    def __iter__(self) -> ChunkStream:
        return self

    def __next__(self) -> bytes:
        while True:
            try:
                item = self._queue.get(timeout=CLIENT_CHECK_SECONDS)
            except queue.Empty:
                if self._client_gone is not None and self._client_gone():
                    self.close()
                    raise StopIteration from None
                continue
            if item is _END:
                raise StopIteration
            if isinstance(item, _Failed):
                raise item.error
            return item

    def close(self) -> None:
        """Cancel the producer if it still runs (idempotent)."""
        if not self._closed:
            self._closed = True
            self._future.cancel()


def gunicorn_client_gone(environ: dict[str, Any]) -> Callable[[], bool] | None:
    """A check that the client of this request closed its connection, where the WSGI server exposes it."""
    sock = environ.get("gunicorn.socket")
    if sock is None:
        return None

    def gone() -> bool:
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    return gone
