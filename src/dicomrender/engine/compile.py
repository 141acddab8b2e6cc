"""Compiling a parameter set: the exact uint8 table of every channel, and the fast forms proven equal.

For integer data with at most 16 stored bits the whole chain (modality transform, VOI,
inversion, rounding) is composed into one uint8 table per channel over the stored-value domain,
built by :mod:`dicomrender._reference` itself, so it is exact by construction.  On top of that,
:mod:`.proof` finds the kernel forms that give the same bytes faster.  Compiled sets are cached
twice over in the one cache type: by the parameter objects (one dict look-up per call) and by
value (a LUT item compiles once however many equal copies a file holds).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .. import _kernel, _reference
from .._types import VOI, Modality, Rescale, StoredFormat, Window
from .cache import LRUCache
from .proof import narrow_table, prove_affine

__all__ = ["Compiled", "compile_tables", "LUT_MAX_BITS"]

#: Largest stored-value domain composed into a lookup table (16 bits: 64 KiB per channel).
LUT_MAX_BITS = 16

#: Compiled parameter sets kept (each at most 4 x 64 KiB of tables).
CACHE_SIZE = 64


class Compiled:
    """What a parameter set compiles to: the exact tables, the affine form when proven, and for one
    window whose table changes only over a short run of stored values, that run (see narrow_table)."""

    __slots__ = ("tables", "affine", "narrow")

    def __init__(self, tables: np.ndarray, affine: Optional[np.ndarray], narrow: Optional[tuple] = None):
        self.tables = tables
        self.affine = affine
        self.narrow = narrow


#: Keyed by the parameter objects themselves: holding them keeps them alive, so an identity-hashed
#: LUT item can never alias a new one.
_BY_OBJECT = LRUCache(CACHE_SIZE)
_BY_VALUE = LRUCache(CACHE_SIZE)


def _value_key(t):
    # Rescale and Window are frozen dataclasses, hashable by value; LUT items hash their table bytes.
    return t if isinstance(t, (Rescale, Window)) else t.key()


def compile_tables(fmt: StoredFormat, modality: Modality, vois: Sequence[VOI], invert: bool) -> Compiled:
    """The compiled form of ``(fmt, modality, vois, invert)``, from the cache when it was compiled before."""
    fast_key = (fmt, modality, tuple(vois), invert)
    compiled = _BY_OBJECT.get(fast_key)
    if compiled is None:
        key = (fmt.bits_stored, fmt.signed, _value_key(modality), tuple(_value_key(v) for v in vois), bool(invert))
        compiled = _BY_OBJECT.put(fast_key, _BY_VALUE.get_or_make(key, lambda: _compile(fmt, modality, vois, invert)))
    return compiled


def _compile(fmt: StoredFormat, modality: Modality, vois: Sequence[VOI], invert: bool) -> Compiled:
    m = modality.values(fmt.domain())
    tables = np.empty((len(vois), m.size), dtype=np.uint8)
    for j, voi in enumerate(vois):
        tables[j] = _reference.to_uint8(voi.values(m), invert, voi.snap)
    tables.setflags(write=False)
    affine = prove_affine(fmt, modality, vois, invert, tables) if _kernel.HAVE_AFFINE else None
    narrow = narrow_table(fmt, tables[0]) if len(vois) == 1 and fmt.bits_allocated <= 16 else None
    return Compiled(tables, affine, narrow)
