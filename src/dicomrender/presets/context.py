""":class:`RenderContext`: what a preset sees when it chooses the window of a group of frames.

This is the plugin contract: a preset's ``compute`` function receives one and reads only the
names documented here (never the reading layer's types), so the DICOM reader can change freely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from pydicom.dataset import Dataset

from .._types import HeaderWindow, Modality, StoredFormat, VOILut

__all__ = ["RenderContext", "BLOCK_PIXELS"]

#: Pixels per block of :meth:`RenderContext.modality_blocks`: float64 temporaries of a few blocks stay
#: within tens of MB whatever the image size.
BLOCK_PIXELS = 1 << 20


@dataclass(frozen=True)
class RenderContext:
    """What a preset sees when it chooses a window for a group of frames.

    Attributes
    ----------
    dataset : pydicom.Dataset
        The image's data set.
    words : numpy.ndarray
        The allocated words of the frames being rendered.
    format : StoredFormat or None
        How stored values sit in the words (None for float pixel data).
    transform : Rescale or ModalityLut
        The modality transform of these frames.
    windows : list of HeaderWindow
        The header's windows for these frames (per-frame, shared, then top level).
    voi_luts : sequence of VOILut
        The header's VOI LUTs for these frames (each item parsed when first read).
    modality : str
        The Modality attribute (``"CT"``, ``"MR"``...; ``""`` when absent).
    hounsfield : bool
        Whether the modality values are Hounsfield units.
    pixel_padding : (low, high) or None
        Pixel Padding Value / Range Limit, as stored values.
    strict : bool
        Whether presets must refuse images they are not meant for.
    options : dict
        Extra keyword arguments given to :func:`dicomrender.render` (``voi_index``, ...).
    """

    dataset: Dataset = field(repr=False)
    words: np.ndarray = field(repr=False)
    format: Optional[StoredFormat]
    transform: Modality
    windows: List[HeaderWindow] = field(default_factory=list)
    voi_luts: Sequence[VOILut] = field(default_factory=list)
    modality: str = ""
    hounsfield: bool = False
    pixel_padding: Optional[Tuple[int, int]] = None
    strict: bool = True
    options: Dict[str, Any] = field(default_factory=dict)

    def stored_values(self) -> np.ndarray:
        """Stored values (masked, sign-extended; float data as float64)."""
        if self.format is None:
            return self.words.astype(np.float64)
        return self.format.stored(self.words)

    def modality_values(self, exclude_padding: bool = True) -> np.ndarray:
        """Flat float64 modality values, without Pixel Padding Value/Range and NaN.

        This holds several float64 copies of the pixels: presets that can should read
        :meth:`modality_blocks` instead.
        """
        return self._modality(self.stored_values().reshape(-1), exclude_padding)

    def modality_blocks(self, exclude_padding: bool = True, size: int = BLOCK_PIXELS) -> Iterator[np.ndarray]:
        """The values of :meth:`modality_values`, in the same order, at most ``size`` pixels at a time
        (the temporary memory of a block, not of the image)."""
        words = np.asarray(self.words)
        if words.flags.c_contiguous:
            runs: Any = (words.reshape(-1),)
        else:  # one frame at a time: a copy of one frame, never of all
            runs = (np.ascontiguousarray(frame).reshape(-1) for frame in words)
        for run in runs:
            for start in range(0, run.size, size):
                yield self._modality(self._stored(run[start:start + size]), exclude_padding)

    def _stored(self, words: np.ndarray) -> np.ndarray:
        """:meth:`stored_values` of some words; words that are their stored values (every bit stored, native
        order) are taken as they are, in their own dtype: the same values, without an int64 copy."""
        fmt = self.format
        if fmt is None:
            return words.astype(np.float64)
        if fmt.bits_stored == fmt.bits_allocated and words.dtype.isnative and words.dtype.kind in "iu":
            return words.view(f"{'i' if fmt.signed else 'u'}{fmt.bits_allocated // 8}")
        return fmt.stored(words)

    def _modality(self, stored: np.ndarray, exclude_padding: bool) -> np.ndarray:
        if exclude_padding and self.pixel_padding is not None and self.format is not None:
            low, high = self.pixel_padding
            stored = stored[(stored < low) | (stored > high)]
        values = self.transform.values(stored)
        if values.dtype.kind != "f":
            return values
        nan = np.isnan(values)
        return values[~nan] if nan.any() else values
