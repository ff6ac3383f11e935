"""Small caches the console's processes share between requests. Pure: no Flask, no
Temporal.

- `TTLCache`: figures that many requests ask for and that may be a few seconds old (the
  home page's Temporal counts, the gateway's visibility reads).
- `LRUMap`: the last N things a process used, least recently used dropped first (the
  runs a process read, the list rows it rendered)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class TTLCache:
    """Values kept for `ttl` seconds after they were computed; `None` is never kept, so
    a failed lookup (Temporal unreachable) is retried by the next request.

    With `refresh` (a way to run a function in the background), a value in the second
    half of its life is still returned at once, and recomputed in the background, once
    per key at a time: a key asked for steadily never makes a request wait, and its
    value is never older than `ttl`.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_entries: int = 256):
        self._clock = clock
        self._max = max_entries
        # key -> (expires at, refresh from, value)
        self._entries: dict[Hashable, tuple[float, float, Any]] = {}
        self._refreshing: set[Hashable] = set()
        self._lock = threading.Lock()

    def get_or_compute(
        self,
        key: Hashable,
        ttl: float,
        compute: Callable[[], Any],
        *,
        refresh: Callable[[Callable[[], None]], Any] | None = None,
    ) -> Any:
        if ttl <= 0:
            return compute()
        value = self.peek(key, ttl, compute, refresh=refresh)
        if value is not None:
            return value
        # Computed outside the lock: a slow Temporal call must not hold up other keys.
        # Two requests missing at once may both compute; the later one is kept.
        value = compute()
        self._store(key, ttl, value)
        return value

    def peek(
        self,
        key: Hashable,
        ttl: float,
        compute: Callable[[], Any],
        *,
        refresh: Callable[[Callable[[], None]], Any] | None = None,
    ) -> Any:
        """The value if it is still kept (None if not), refreshed in the background as
        `get_or_compute` would; never computes it while the caller waits."""
        now = self._clock()
        with self._lock:
            hit = self._entries.get(key)
            if hit is None or hit[0] <= now:
                return None
            due = refresh is not None and hit[1] <= now and key not in self._refreshing
            if due:
                self._refreshing.add(key)
        if due and refresh is not None:
            refresh(lambda: self._recompute(key, ttl, compute))
        return hit[2]

    def _recompute(self, key: Hashable, ttl: float, compute: Callable[[], Any]) -> None:
        try:
            self._store(key, ttl, compute())
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def _store(self, key: Hashable, ttl: float, value: Any) -> None:
        if value is None:
            return
        with self._lock:
            now = self._clock()
            if len(self._entries) >= self._max:
                self._evict(now)
            self._entries[key] = (now + ttl, now + ttl / 2, value)

    def _evict(self, now: float) -> None:
        for key in [k for k, (expires, _, _) in self._entries.items() if expires <= now]:
            del self._entries[key]
        while len(self._entries) >= self._max:
            self._entries.pop(next(iter(self._entries)))


class LRUMap(Generic[V]):
    """At most `size` entries; using one (get, put, get_or_put) makes it the most recent,
    and the least recently used is dropped first. Thread-safe: a process's request
    threads share it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._use(key)

    def get_or_put(self, key: Hashable, make: Callable[[], V]) -> V:
        """The entry for `key`, made by `make()` (under the lock) when there is none."""
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                value = self._entries[key] = make()
            self._use(key)
            return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _use(self, key: Hashable) -> None:
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
