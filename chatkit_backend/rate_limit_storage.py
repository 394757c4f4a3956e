"""In-process rate-limit counters for `memory://`: the sliding-window counters flask-limiter uses here.

limits' own MemoryStorage expires counters from a timer thread that, every 10 ms while counters
exist, starts a new thread and walks every counter: with one counter per visitor (per-user limits
of anonymous first visits) that is O(visitors) CPU a hundred times a second, and the largest cost
of the session route under load (docs/BENCHMARKS.md). Here, counters sit in a dict and a heap
ordered by expiry; each call drops the counters that have expired, so expiry costs O(log n) per
counter, once, and no thread is ever started. It registers the `chatkit-memory://` scheme with
limits (its documented extension point); `rate_limits.init_app` maps `memory://` onto it.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from math import floor

from limits.storage import Storage
from limits.storage.base import SlidingWindowCounterSupport, TimestampedSlidingWindow

SCHEME = "chatkit-memory"


class ExpiringMemoryStorage(Storage, SlidingWindowCounterSupport, TimestampedSlidingWindow):
    """Counters with an expiry, in this process; enough for the sliding-window-counter strategy."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str) -> None:
        self._counts: dict[str, int] = {}
        self._expiries: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []  # (expiry, key); stale entries are skipped when popped
        self._lock = threading.Lock()
        # Seconds since the epoch; tests replace it to move time without waiting.
        self.clock: Callable[[], float] = time.time
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception]:
        return ValueError

    def live_counters(self) -> int:
        """How many counters have not expired (not `__len__`: flask-limiter tests the storage for truth)."""
        with self._lock:
            self._expire(self.clock())
            return len(self._counts)

    def _expire(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            expiry, key = heapq.heappop(heap)
            if self._expiries.get(key) == expiry:
                del self._expiries[key]
                del self._counts[key]

    def _incr(self, key: str, expiry: float, amount: int, now: float) -> int:
        count = self._counts.get(key, 0) + amount
        self._counts[key] = count
        if count == amount:  # a new counter: its expiry runs from its first hit
            expires_at = now + expiry
            self._expiries[key] = expires_at
            heapq.heappush(self._heap, (expires_at, key))
        return count

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        with self._lock:
            now = self.clock()
            self._expire(now)
            return self._incr(key, expiry, amount, now)

    def get(self, key: str) -> int:
        with self._lock:
            self._expire(self.clock())
            return self._counts.get(key, 0)

    def get_expiry(self, key: str) -> float:
        with self._lock:
            now = self.clock()
            self._expire(now)
            return self._expiries.get(key, now)

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with self._lock:
            count = len(self._counts)
            self._counts.clear()
            self._expiries.clear()
            self._heap.clear()
            return count

    def clear(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)
            self._expiries.pop(key, None)  # its heap entry is now stale and skipped

    # The sliding window counter: the current window's count plus the previous window's, weighted
    # by how much of it still overlaps the sliding window (limits' MemoryStorage computes the same).

    def _window(self, key: str, expiry: int, now: float) -> tuple[str, int, float, int, float]:
        previous_key, current_key = self.sliding_window_keys(key, expiry, now)
        previous_count = self._counts.get(previous_key, 0)
        current_count = self._counts.get(current_key, 0)
        previous_ttl = (1 - (((now - expiry) / expiry) % 1)) * expiry if previous_count else 0.0
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return current_key, previous_count, previous_ttl, current_count, current_ttl

    def acquire_sliding_window_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        with self._lock:
            now = self.clock()
            self._expire(now)
            current_key, previous_count, previous_ttl, current_count, _ = self._window(key, expiry, now)
            if floor(previous_count * previous_ttl / expiry + current_count) + amount > limit:
                return False
            # A window's counter lives two windows: its own, then as the previous one.
            self._incr(current_key, 2 * expiry, amount, now)
            return True

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        with self._lock:
            now = self.clock()
            self._expire(now)
            _, previous_count, previous_ttl, current_count, current_ttl = self._window(key, expiry, now)
            return previous_count, previous_ttl, current_count, current_ttl

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        for window_key in self.sliding_window_keys(key, expiry, self.clock()):
            self.clear(window_key)
