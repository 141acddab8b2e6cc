"""The data sets of recently rendered files, kept in memory for the next request.

A viewer asks for the same instance again and again (dragging the window, scrolling back and forth):
parsing the file with pydicom costs more than rendering and encoding it.  Each entry is the data set
``dicom.source.read_dataset`` gives for the path, the same ``render(path)`` reads, so a cached
render equals an uncached one.  Entries are keyed by path, size and modification time (a changed
file is read again) and the whole cache is bounded by the bytes of the pixel data it holds (least
recently used first out).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Tuple

from pydicom.dataset import Dataset

from ..dicom.source import read_dataset

__all__ = ["DEFAULT_CACHE_BYTES", "DatasetCache"]

#: Default bound of one server process's cache.
DEFAULT_CACHE_BYTES = 256 << 20
#: What an entry counts beside its pixel data (the parsed header).
_ENTRY_OVERHEAD = 64 << 10


class DatasetCache:
    """``get(path)``: the parsed data set of ``path``, from memory when it has not changed.

    Parameters
    ----------
    max_bytes : int
        Bound of the pixel data held (0: no cache, every call reads the file).
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES):
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError(f"max_bytes must be an integer >= 0, got {max_bytes!r}")
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = self.misses = 0
        self._entries: "OrderedDict[Tuple[str, int, int], Tuple[Dataset, int]]" = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str) -> Dataset:
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry[0]
            self.misses += 1
        ds, _ = read_dataset(path)  # outside the lock: other requests go on meanwhile
        size = _size(ds)
        if size > self.max_bytes:
            return ds
        with self._lock:
            if key not in self._entries:
                for old in [k for k in self._entries if k[0] == path]:  # an older version of the file
                    self.bytes -= self._entries.pop(old)[1]
                self._entries[key] = (ds, size)
                self.bytes += size
            while self.bytes > self.max_bytes and self._entries:
                self.bytes -= self._entries.popitem(last=False)[1][1]
        return ds


def _size(ds: Dataset) -> int:
    pixels = 0
    for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        value = ds.get(keyword)  # by keyword: the value
        if isinstance(value, (bytes, bytearray)):
            pixels += len(value)
    return pixels + _ENTRY_OVERHEAD
