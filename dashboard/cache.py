"""A small time-bounded cache for figures that many requests ask for and that may be a
few seconds old (the home page's Temporal counts). Pure: no Flask, no Temporal."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any


class TTLCache:
    """Values kept for `ttl` seconds after they were computed; `None` is never kept, so
    a failed lookup (Temporal unreachable) is retried by the next request."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_entries: int = 256):
        self._clock = clock
        self._max = max_entries
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get_or_compute(self, key: Hashable, ttl: float, compute: Callable[[], Any]) -> Any:
        if ttl <= 0:
            return compute()
        now = self._clock()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        # Computed outside the lock: a slow Temporal call must not hold up other keys.
        # Two requests missing at once may both compute; the later one is kept.
        value = compute()
        if value is not None:
            with self._lock:
                if len(self._entries) >= self._max:
                    self._evict(now)
                self._entries[key] = (self._clock() + ttl, value)
        return value

    def _evict(self, now: float) -> None:
        for key in [k for k, (expires, _) in self._entries.items() if expires <= now]:
            del self._entries[key]
        while len(self._entries) >= self._max:
            self._entries.pop(next(iter(self._entries)))
