"""The ``iccprofile`` rendered parameter of PS3.18 (§8.3.5.1.5) on RGB images, through LittleCMS (Pillow's
ImageCms).

* ``"no"`` (default): the pixels are written as rendered, with no profile in the file.
* ``"yes"``: the image's own ICC profile is embedded in the output file, the pixels unchanged.
* ``"srgb"``: the pixels are converted from the image's profile to sRGB (rendering intent
  :data:`INTENT`) and the sRGB profile is embedded.  An image without a profile is taken to be sRGB
  already: its pixels are not changed, the sRGB profile is embedded.
* ``"adobergb"``, ``"rommrgb"``: values of the standard this library does not implement (no profile
  of those spaces ships with LittleCMS's Python binding): refused with
  :class:`~dicomrender.errors.InvalidArgumentError`.

Grey images have no colour space to manage: every value is accepted and ignored for them.
"""

from __future__ import annotations

import functools
import io
from typing import Optional, Tuple

import numpy as np

from ..errors import InvalidArgumentError, InvalidDatasetError

__all__ = ["ICC_PROFILE_VALUES", "SUPPORTED_ICC_PROFILE_VALUES", "INTENT", "check_iccprofile", "open_profile",
           "srgb_profile", "to_srgb", "apply_iccprofile"]

#: The values PS3.18 defines for ``iccprofile``.
ICC_PROFILE_VALUES = ("no", "yes", "srgb", "adobergb", "rommrgb")
#: Those this library implements.
SUPPORTED_ICC_PROFILE_VALUES = ("no", "yes", "srgb")
#: Rendering intent of the conversion to sRGB: relative colorimetric (ICC intent 1), which keeps the
#: colours inside the sRGB gamut unchanged and clips the others; matrix-shaper profiles, the usual kind
#: in DICOM files, have no perceptual tables anyway.
INTENT = 1


def check_iccprofile(value) -> str:
    """``value`` as one of :data:`SUPPORTED_ICC_PROFILE_VALUES` (case-insensitive), or
    :class:`~dicomrender.errors.InvalidArgumentError` naming ``iccprofile``; None means ``"no"``."""
    if value is None:
        return "no"
    if not isinstance(value, str):
        raise InvalidArgumentError(f"iccprofile must be one of {', '.join(ICC_PROFILE_VALUES)}, got {value!r}",
                                   attribute="iccprofile")
    text = value.strip().lower()
    if text in SUPPORTED_ICC_PROFILE_VALUES:
        return text
    if text in ICC_PROFILE_VALUES:
        raise InvalidArgumentError(f"iccprofile={value!r} is not supported: use no, yes or srgb",
                                   attribute="iccprofile")
    import difflib

    close = difflib.get_close_matches(text, ICC_PROFILE_VALUES, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise InvalidArgumentError(f"iccprofile must be one of {', '.join(ICC_PROFILE_VALUES)}, got {value!r}{hint}",
                               attribute="iccprofile")


def open_profile(data: bytes):
    """``data`` as a Pillow ``ImageCmsProfile``; an unreadable profile is
    :class:`~dicomrender.errors.InvalidDatasetError` naming ``ICCProfile``."""
    from PIL import ImageCms

    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
        colour_space = profile.profile.xcolor_space
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError) as exc:
        raise InvalidDatasetError(f"ICCProfile is not a usable ICC profile ({len(data)} bytes): {exc}",
                                  attribute="ICCProfile") from None
    if colour_space.strip() != "RGB":
        raise InvalidDatasetError(f"ICCProfile describes a {colour_space.strip()!r} colour space, not RGB",
                                  attribute="ICCProfile")
    return profile


@functools.lru_cache(maxsize=1)
def srgb_profile() -> bytes:
    """The bytes of LittleCMS's built-in sRGB profile (embedded by ``iccprofile="srgb"``)."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def to_srgb(pixels: np.ndarray, profile: bytes) -> np.ndarray:
    """RGB uint8 ``(..., rows, cols, 3)`` pixels converted from ``profile`` to sRGB (a new array)."""
    from PIL import Image, ImageCms

    source = open_profile(profile)
    transform = ImageCms.buildTransform(source, ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")),
                                        "RGB", "RGB", renderingIntent=ImageCms.Intent(INTENT))
    out = np.empty_like(pixels)
    flat_in = pixels.reshape((-1,) + pixels.shape[-3:])
    flat_out = out.reshape(flat_in.shape)
    for k in range(flat_in.shape[0]):
        image = ImageCms.applyTransform(Image.fromarray(np.ascontiguousarray(flat_in[k]), "RGB"), transform)
        assert image is not None
        flat_out[k] = np.asarray(image)
    return out


def apply_iccprofile(pixels: np.ndarray, value: str, profile: Optional[bytes], *,
                     rgb: Optional[bool] = None) -> Tuple[np.ndarray, Optional[bytes]]:
    """The pixels to write and the profile to embed for ``iccprofile=value``.

    Parameters
    ----------
    pixels : numpy.ndarray
        Rendered uint8 pixels; RGB when the last axis is 3, else grey (returned unchanged, no profile).
    value : str
        A value :func:`check_iccprofile` accepts.
    profile : bytes or None
        The image's own ICC profile.
    rgb : bool, optional
        Whether the pixels are RGB; default: when they have 3 axes or more and a last axis of 3.
    """
    value = check_iccprofile(value)
    if rgb is None:
        rgb = pixels.ndim >= 3 and pixels.shape[-1] == 3
    if value == "no" or not rgb:
        return pixels, None
    if value == "yes":
        if profile is not None:
            open_profile(profile)  # a garbage profile is an error, not a silently broken file
        return pixels, profile
    if profile is None:  # already sRGB by assumption (PS3.3 C.11.15: no profile means sRGB)
        return pixels, srgb_profile()
    return to_srgb(pixels, profile), srgb_profile()
