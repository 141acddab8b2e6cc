""":class:`RenderContext`: what a preset sees when it chooses the window of a group of frames.

This is the plugin contract: a preset's ``compute`` function receives one and reads only the
names documented here (never the reading layer's types), so the DICOM reader can change freely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from pydicom.dataset import Dataset

from .._types import HeaderWindow, Modality, StoredFormat, VOILut

__all__ = ["RenderContext"]


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
    voi_luts : list of VOILut
        The header's VOI LUTs for these frames.
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
    voi_luts: List[VOILut] = field(default_factory=list)
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
        """Flat float64 modality values, without Pixel Padding Value/Range and NaN."""
        stored = self.stored_values().reshape(-1)
        if exclude_padding and self.pixel_padding is not None and self.format is not None:
            low, high = self.pixel_padding
            stored = stored[(stored < low) | (stored > high)]
        values = self.transform.values(stored)
        return values[~np.isnan(values)] if values.dtype.kind == "f" else values
