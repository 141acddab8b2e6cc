"""The ICC profile of a colour image: ICC Profile (0028,2000) of the data set, else of the first item of
the Optical Path Sequence (0048,0105) that has one (whole slide images keep it there, PS3.3 C.8.12.5)."""

from __future__ import annotations

from typing import Optional

from pydicom.dataset import Dataset

from ..errors import InvalidDatasetError
from .elements import get

__all__ = ["icc_profile"]


def icc_profile(ds: Dataset) -> Optional[bytes]:
    """The embedded ICC profile bytes, or None when the image has none.

    Raises
    ------
    InvalidDatasetError
        The element cannot be read (``attribute="ICCProfile"``).
    """
    try:
        profile = get(ds, "ICCProfile")
        if not profile:
            for item in get(ds, "OpticalPathSequence") or ():
                profile = get(item, "ICCProfile")
                if profile:
                    break
    except InvalidDatasetError:
        raise
    except Exception as exc:  # an element pydicom cannot decode
        raise InvalidDatasetError(f"ICCProfile cannot be read: {exc}", attribute="ICCProfile") from None
    if not profile:
        return None
    if not isinstance(profile, (bytes, bytearray)):
        raise InvalidDatasetError(f"ICCProfile must be bytes (VR OB), got {type(profile).__name__}",
                                  attribute="ICCProfile")
    return bytes(profile)
