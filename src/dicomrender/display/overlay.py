"""Burning overlay masks into rendered uint8 images (pure numpy).

The modes are dcmtk's defaults (``dcm2pnm``: Graphic planes "Replace" with foreground density 1,
ROI planes "Region of Interest"), so a render with overlays equals ``dcm2pnm``'s:

- replace: the pixels of the mask take ``value`` (255: white, MONOCHROME1 or not, since the burn
  comes after the grayscale pipeline and its inversion);
- darken: the pixels of the mask (a region-of-interest plane's rectangle outside the region) are
  shifted right by 4 bits, i.e. divided by 16 and floored.

An image of several channels (one per preset, or RGB) has each channel burnt alike.
"""

from __future__ import annotations

from typing import Iterable, Tuple

import numpy as np

__all__ = ["burn", "darken", "burn_layers", "MODES", "ROI_SHIFT"]

#: The burn modes :func:`burn_layers` knows.
MODES = ("replace", "darken")
#: dcmtk's region-of-interest mode halves the bits of the output sample (8 bits: a shift by 4).
ROI_SHIFT = 4


def _check(image: np.ndarray, mask: np.ndarray) -> None:
    if image.dtype != np.uint8:
        raise TypeError(f"image must be uint8, got {image.dtype}")
    if mask.dtype != np.bool_ or mask.shape != image.shape[:2]:
        raise ValueError(f"mask must be bool of shape {image.shape[:2]}, got {mask.dtype} {mask.shape}")


def burn(image: np.ndarray, mask: np.ndarray, value: int = 255) -> np.ndarray:
    """Set the pixels of ``mask`` to ``value`` in ``image`` ``(rows, cols[, channels])``, in place.

    Returns
    -------
    numpy.ndarray
        ``image``.
    """
    _check(image, mask)
    if not 0 <= int(value) <= 255:
        raise ValueError(f"value must be 0..255, got {value}")
    image[mask] = value
    return image


def darken(image: np.ndarray, mask: np.ndarray, shift: int = ROI_SHIFT) -> np.ndarray:
    """Shift the pixels of ``mask`` right by ``shift`` bits in ``image``, in place; returns ``image``."""
    _check(image, mask)
    image[mask] >>= shift
    return image


def burn_layers(image: np.ndarray, layers: Iterable[Tuple[np.ndarray, str]], value: int = 255) -> np.ndarray:
    """Apply ``(mask, mode)`` layers in order (mode ``"replace"`` or ``"darken"``); returns ``image``."""
    for mask, mode in layers:
        if mode == "replace":
            burn(image, mask, value)
        elif mode == "darken":
            darken(image, mask)
        else:
            raise ValueError(f"unknown overlay mode {mode!r}; expected one of {MODES}")
    return image
