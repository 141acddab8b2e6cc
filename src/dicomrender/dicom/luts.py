"""Lookup tables stored in the header: Modality LUT, VOI LUT and Palette Color LUT items.

One descriptor parser serves all three (PS3.3 C.11.1.1.1, C.7.6.3.1.5): 0 entries means 65536,
the first mapped value is unsigned unless the values it maps are signed, and entries have a
stated bit depth.  Segmented palettes (C.7.9.2) are expanded here, bounded by their descriptor
before anything is allocated: a few kB of segments can otherwise describe gigabytes.
"""

from __future__ import annotations

from struct import unpack
from typing import List, Optional, Sequence, Tuple

import numpy as np
from pydicom.dataset import Dataset

from ..errors import InvalidDatasetError
from .elements import values

__all__ = ["parse_descriptor", "lut_table", "palette_tables", "expand_segmented"]

_CHANNELS = ("Red", "Green", "Blue")

#: Segments a segmented LUT may visit while expanding (indirect ones included); real palettes use a few.
SEGMENT_BUDGET = 1_000_000


def parse_descriptor(descriptor, attribute: str, signed_first: bool, allowed_bits: Sequence[int],
                     keyword: str = "LUTDescriptor") -> Tuple[int, int, int]:
    """``(entries, first_mapped, bits)`` of a LUT descriptor, checked.

    ``signed_first``: the values the table maps can be negative, so a first mapped value of
    32768 or more is read as two's complement.  ``allowed_bits``: the entry bit depths accepted.
    """
    items = values(descriptor)
    if len(items) != 3:
        raise InvalidDatasetError(f"{attribute} {keyword} must have 3 values, got {items!r}", attribute=keyword)
    try:
        n, first, bits = (int(v) for v in items)
    except (TypeError, ValueError):
        raise InvalidDatasetError(f"{attribute} {keyword} must be integers, got {items!r}",
                                  attribute=keyword) from None
    if n < 0 or n > 65535:
        raise InvalidDatasetError(f"{attribute} {keyword} number of entries must be 0..65535, got {n}",
                                  attribute=keyword)
    n = 65536 if n == 0 else n
    if first >= 32768 and signed_first:
        first -= 65536
    if bits not in allowed_bits:
        accepted = f"{min(allowed_bits)}..{max(allowed_bits)}" if len(allowed_bits) > 2 else \
            " or ".join(str(b) for b in allowed_bits)
        raise InvalidDatasetError(f"{attribute} {keyword} bits must be {accepted}, got {bits}", attribute=keyword)
    return n, first, bits


def lut_table(item: Dataset, signed_first: bool, attribute: str,
              stored_range: Optional[tuple] = None) -> Tuple[np.ndarray, int, int]:
    """(data, first_mapped, bits) of a Modality/VOI LUT item, checked against its descriptor.

    A Modality LUT whose first mapped value lies outside ``stored_range`` maps no stored value at
    all and is refused rather than rendered as a flat picture.
    """
    if "LUTDescriptor" not in item:
        raise InvalidDatasetError(f"{attribute} item has no LUTDescriptor", attribute="LUTDescriptor")
    n, first, bits = parse_descriptor(item["LUTDescriptor"].value, attribute, signed_first, range(8, 17))
    if stored_range is not None and not stored_range[0] <= first <= stored_range[1]:
        raise InvalidDatasetError(
            f"{attribute} LUTDescriptor first mapped value {first} is outside the stored value range "
            f"{stored_range[0]}..{stored_range[1]}", attribute="LUTDescriptor")
    if "LUTData" not in item or item["LUTData"].value is None:
        raise InvalidDatasetError(f"{attribute} has no LUTData", attribute="LUTData")
    raw = item["LUTData"].value
    if isinstance(raw, (bytes, bytearray)):
        # 8-bit entries may be packed two per 16-bit word (OW); otherwise one entry per word
        packed = bits == 8 and len(raw) in (n, n + 1)
        data = np.frombuffer(raw, dtype="<u1" if packed else "<u2",
                             count=n if packed else len(raw) // 2)
    else:
        data = np.asarray(values(raw), dtype=np.int64)
        if bits == 8 and data.size == (n + 1) // 2 and n > 1 and data.size and int(data.max()) > 255:
            # 8-bit entries packed two per US value, low byte first (PS3.3 C.11.1.1.1)
            data = data.astype("<u2").view(np.uint8)[:n]
    if data.size == 2 * n and bits == 8 and data.dtype == np.uint8:
        data = data[:n]
    if data.size != n:
        raise InvalidDatasetError(f"{attribute} LUTData has {data.size} entries, LUTDescriptor says {n}",
                                  attribute="LUTData")
    if data.size and (int(data.max()) >= (1 << bits) or int(data.min()) < 0):
        raise InvalidDatasetError(f"{attribute} LUTData has entries outside 0..{(1 << bits) - 1} "
                                  f"({bits} bits per LUTDescriptor)", attribute="LUTData")
    return data.astype(np.int64), first, bits


def expand_segmented(words: Sequence[int], little_endian: bool, eight_bit: bool, limit: int) -> Optional[List[int]]:
    """The entries of a segmented LUT (PS3.3 C.7.9.2), or None when it expands to more than ``limit``
    entries or takes more than :data:`SEGMENT_BUDGET` segment visits.

    Discrete, linear and indirect segments as pydicom reads them (indirect offsets relative to the
    segment list being read; linear segments rounded half to even).  Raises ``ValueError`` for
    malformed data.
    """
    budget = [SEGMENT_BUDGET]
    order = [3, 2, 1, 0] if little_endian else [2, 3, 0, 1]

    def expand(start: int, segments: Optional[int], last: Optional[int], out: List[int]) -> bool:
        offset, read = start, 0
        while offset + 1 < len(words):  # + 1: the data may end in a padding zero
            opcode, length = words[offset], words[offset + 1]
            offset += 2
            budget[0] -= 1
            if budget[0] < 0:
                return False
            if opcode == 0:
                if len(out) + min(length, len(words) - offset) > limit:
                    return False
                out.extend(words[offset:offset + length])
                offset += length
            elif opcode == 1:
                if len(out) + length > limit:
                    return False
                if out:
                    y0 = out[-1]
                elif last:
                    y0 = last
                else:
                    raise ValueError("the first segment cannot be a linear segment")
                y1 = words[offset]
                offset += 1
                if y0 == y1:
                    out.extend([y1] * length)
                elif length:
                    step = (y1 - y0) / length
                    out.extend(int(v) for v in np.around(np.linspace(y0 + step, y1, length)))
            elif opcode == 2:
                if not out:
                    raise ValueError("the first segment cannot be an indirect segment")
                if eight_bit:
                    b = [words[offset + i] for i in order]
                    target = (b[0] << 8 | b[1]) << 16 | (b[2] << 8 | b[3])
                    offset += 4
                else:
                    target = words[offset + 1] << 16 | words[offset]
                    offset += 2
                if not expand(start + target, length, out[-1], out):
                    return False
            else:
                raise ValueError(f"unknown segment type {opcode}")
            read += 1
            if read == segments:
                break
        return True

    out: List[int] = []
    try:
        return out if expand(0, None, None, out) else None
    except IndexError:
        raise ValueError("a segment runs past the end of the data") from None


def palette_tables(ds: Dataset, signed: bool, little_endian: bool) -> Tuple[np.ndarray, int, int]:
    """``(tables, first_mapped, bits)`` of the Palette Color LUT: ``tables`` is ``(3, n)`` int64.

    Normal and segmented palettes (PS3.3 C.7.6.3.1.5-6, C.7.9.2).  Raises
    :class:`InvalidDatasetError` naming the attribute when a descriptor or the data is missing or
    inconsistent.
    """
    tables = []
    first = bits = None
    for colour in _CHANNELS:
        keyword = f"{colour}PaletteColorLookupTableDescriptor"
        descriptor = ds.get(keyword)
        if descriptor is None:
            raise InvalidDatasetError(f"PALETTE COLOR image has no {keyword}", attribute=keyword)
        n, first_c, bits_c = parse_descriptor(descriptor, "PALETTE COLOR", signed, (8, 16), keyword)
        if first is None:
            first, bits = first_c, bits_c
        elif (first_c, bits_c) != (first, bits):
            raise InvalidDatasetError(f"{keyword} {values(descriptor)} differs from the Red descriptor",
                                      attribute=keyword)
        tables.append(_palette_channel(ds, colour, n, bits_c, little_endian, keyword))
    assert first is not None and bits is not None  # three channels were read
    return np.stack(tables), first, bits


def _palette_channel(ds: Dataset, colour: str, n: int, bits: int, little: bool, keyword: str) -> np.ndarray:
    plain = f"{colour}PaletteColorLookupTableData"
    segmented = f"Segmented{colour}PaletteColorLookupTableData"
    if ds.get(plain) is not None:
        raw = ds[plain].value
        if not isinstance(raw, (bytes, bytearray)):
            table = np.asarray(list(raw), dtype=np.int64)
        elif len(raw) == n:  # 8-bit entries packed into OW
            table = np.frombuffer(raw, dtype=np.uint8).astype(np.int64)
        else:
            table = np.frombuffer(raw, dtype="<u2" if little else ">u2", count=len(raw) // 2).astype(np.int64)
        if bits == 8 and table.size == n and table.max(initial=0) > 255:
            # 8-bit entries stored in the high byte of each word (seen in the wild)
            table = table >> 8
        attribute = plain
    elif ds.get(segmented) is not None:
        raw = ds[segmented].value
        size = 1 if bits == 8 else 2
        fmt = f"{'<' if little else '>'}{len(raw) // size}{'B' if size == 1 else 'H'}"
        try:
            expanded = expand_segmented(unpack(fmt, raw[:len(raw) // size * size]), little, size == 1, n)
        except Exception as exc:
            raise InvalidDatasetError(f"{segmented} cannot be expanded: {exc}", attribute=segmented) from None
        if expanded is None:  # refused while expanding: see expand_segmented
            raise InvalidDatasetError(f"{segmented} expands to more than the {n} entries {keyword} says",
                                      attribute=segmented)
        table = np.asarray(expanded, dtype=np.int64)
        attribute = segmented
    else:
        raise InvalidDatasetError(f"PALETTE COLOR image has neither {plain} nor {segmented}", attribute=plain)
    if table.size != n:
        raise InvalidDatasetError(f"{attribute} has {table.size} entries, {keyword} says {n}", attribute=attribute)
    return table

