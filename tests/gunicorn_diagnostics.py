"""gunicorn config for tests: the shipped gunicorn.conf.py, plus a probe a test triggers with SIGWINCH.

On SIGWINCH a worker writes `{"greenlets", "tasks"}` (live greenlets, pending tasks on the ChatKit event loop)
to `$GUNICORN_DIAGNOSTICS_DIR/<pid>.json`, so a test can count them before and after a load. Nothing else
changes: every setting and hook is the shipped file's.
"""

import gc
import json
import os
import signal
from pathlib import Path

_SHIPPED = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"
_OWN_FILE, __file__ = __file__, str(_SHIPPED)  # the shipped file finds its neighbours from its own path
exec(compile(_SHIPPED.read_text(), str(_SHIPPED), "exec"))  # noqa: S102 - the project's own config file
__file__ = _OWN_FILE

_shipped_post_worker_init = post_worker_init  # type: ignore[name-defined]  # noqa: F821 - defined by the exec


def _write_counts() -> None:
    import asyncio

    import gevent

    from chatkit_backend.selfhosted import bridge

    # gevent's own greenlets (request handlers, spawned work); its native thread pool's idle threads are not counted.
    greenlets = sum(1 for o in gc.get_objects() if isinstance(o, gevent.Greenlet) and not o.dead)
    pending = asyncio.all_tasks(bridge.loop)
    tasks = len(pending)
    kinds = sorted({getattr(t.get_coro(), "__qualname__", "?") for t in pending})
    target = Path(os.environ["GUNICORN_DIAGNOSTICS_DIR"]) / f"{os.getpid()}.json"
    partial = target.with_suffix(".tmp")
    partial.write_text(json.dumps({"greenlets": greenlets, "tasks": tasks, "kinds": kinds}))
    partial.rename(target)


def post_worker_init(worker) -> None:
    _shipped_post_worker_init(worker)
    import gevent

    gevent.signal_handler(signal.SIGWINCH, _write_counts)
