"""The in-process rate-limit storage behind `memory://`: same decisions as limits' own, bounded, no threads."""

from __future__ import annotations

import threading

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


class Clock:
    """A clock the test moves by hand, so expiry is checked without waiting."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def storage_with_clock() -> tuple[ExpiringMemoryStorage, Clock]:
    storage, clock = ExpiringMemoryStorage(), Clock()
    storage.clock = clock
    return storage, clock


def test_counters_expire_and_are_dropped():
    storage, clock = storage_with_clock()
    for n in range(1000):
        storage.incr(f"visitor-{n}", expiry=5)
    clock.now += 4.9
    assert storage.live_counters() == 1000
    assert storage.get("visitor-1") == 1
    clock.now += 0.1
    assert storage.get("visitor-1") == 0
    storage.incr("late", expiry=60)
    assert storage.live_counters() == 1


def test_a_cleared_and_recreated_counter_keeps_its_new_expiry():
    storage, clock = storage_with_clock()
    storage.incr("k", expiry=5)
    storage.clear("k")
    storage.incr("k", expiry=60)
    clock.now += 10
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


def test_a_full_sliding_window_admits_again_as_it_slides_past():
    storage, clock = storage_with_clock()
    clock.now = 1_700_000_010.0  # half-way through a minute window
    hits = lambda: [storage.acquire_sliding_window_entry("k", limit=4, expiry=60) for _ in range(5)]  # noqa: E731
    assert hits() == [True, True, True, True, False]
    clock.now += 60  # half-way through the next window: the previous one's 4 hits now weigh 4 x 30/60 = 2
    assert hits() == [True, True, False, False, False]
    clock.now += 120  # both windows have passed
    assert hits() == [True, True, True, True, False]
