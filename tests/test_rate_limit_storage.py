"""The in-process rate-limit storage behind `memory://`: same decisions as limits' own, bounded, no threads."""

from __future__ import annotations

import threading
import time

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from chatkit_backend.rate_limit_storage import ExpiringMemoryStorage
from chatkit_backend.rate_limits import limiter


def test_memory_uri_gets_the_expiring_storage(make_app):
    make_app(RATELIMIT_STORAGE_URI="memory://")
    assert isinstance(limiter.storage, ExpiringMemoryStorage)


def test_sliding_window_decisions_match_limits_memory_storage():
    ours = SlidingWindowCounterRateLimiter(ExpiringMemoryStorage())
    theirs = SlidingWindowCounterRateLimiter(MemoryStorage())
    limit = parse("7/minute")
    keys = ["alice", "bob", "alice", "alice", "carol", "bob"] * 5
    ours_says = [ours.hit(limit, key) for key in keys]
    theirs_says = [theirs.hit(limit, key) for key in keys]
    assert ours_says == theirs_says
    assert ours_says.count(True) == 7 + 7 + 5  # alice and bob reach the limit, carol's 5 all pass
    assert ours.get_window_stats(limit, "alice").remaining == theirs.get_window_stats(limit, "alice").remaining == 0


def test_a_hit_costing_more_than_the_limit_is_refused():
    storage = ExpiringMemoryStorage()
    assert storage.acquire_sliding_window_entry("k", limit=2, expiry=60, amount=3) is False
    assert storage.get_sliding_window("k", 60)[2] == 0


def test_counters_expire_and_are_dropped():
    storage = ExpiringMemoryStorage()
    for n in range(1000):
        storage.incr(f"visitor-{n}", expiry=0.05)
    assert storage.live_counters() == 1000
    assert storage.get("visitor-1") == 1
    time.sleep(0.1)
    assert storage.get("visitor-1") == 0
    storage.incr("late", expiry=60)
    assert storage.live_counters() == 1


def test_a_cleared_and_recreated_counter_keeps_its_new_expiry():
    storage = ExpiringMemoryStorage()
    storage.incr("k", expiry=0.05)
    storage.clear("k")
    storage.incr("k", expiry=60)
    time.sleep(0.1)
    assert storage.get("k") == 1  # the first counter's heap entry is stale and must not drop the second


def test_reset_clears_everything():
    storage = ExpiringMemoryStorage()
    storage.incr("a", expiry=60)
    storage.incr("b", expiry=60)
    assert storage.reset() == 2
    assert storage.live_counters() == 0
    assert storage.get("a") == 0


def test_no_thread_is_started_per_hit():
    storage = ExpiringMemoryStorage()
    limiter_ = SlidingWindowCounterRateLimiter(storage)
    limit = parse("1000/minute")
    before = {thread.ident for thread in threading.enumerate()}
    for n in range(200):
        limiter_.hit(limit, f"visitor-{n}")
    assert {thread.ident for thread in threading.enumerate()} <= before
