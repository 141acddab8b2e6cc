"""The engine's one cache: bounded, least recently used out first, safe across Python threads."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable, List

__all__ = ["LRUCache", "clear_all"]

_CACHES: List["LRUCache"] = []


class LRUCache:
    """At most ``size`` entries; a hit moves the entry to the young end, an insert drops the oldest."""

    def __init__(self, size: int):
        self.size = size
        self._data: "OrderedDict[Hashable, Any]" = OrderedDict()
        self._lock = threading.Lock()
        _CACHES.append(self)

    def get(self, key: Hashable) -> Any:
        """The value cached under ``key``, or None."""
        value = self._data.get(key)  # no lock on the hit path: a dict look-up is atomic
        if value is not None:
            try:
                self._data.move_to_end(key)
            except KeyError:  # dropped by another thread meanwhile: the value is still good
                pass
        return value

    def put(self, key: Hashable, value: Any) -> Any:
        """Cache ``value`` under ``key`` and return it."""
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def get_or_make(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The cached value, else ``make()`` cached (made outside the lock: two threads may both make it)."""
        value = self.get(key)
        return self.put(key, make()) if value is None else value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


def clear_all() -> None:
    """Forget every cached table, proof and parsed argument set (for tests and memory measurements)."""
    for cache in _CACHES:
        cache.clear()
