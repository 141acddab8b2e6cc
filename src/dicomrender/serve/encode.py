"""Rendered pixels to the bytes of a media type: one image, an animation, a multipart body."""

from __future__ import annotations

import uuid
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..io import encode_animation, encode_image

__all__ = ["encode", "encode_frames", "multipart"]


def encode(pixels: np.ndarray, fmt: str, quality: int, icc_profile: Optional[bytes] = None) -> bytes:
    """One uint8 grey or RGB image as ``fmt`` (``JPEG``, ``PNG``, ``WEBP``; ``GIF``: one frame)."""
    return encode_image(pixels, fmt, quality=quality, icc_profile=icc_profile)


def encode_frames(frames: np.ndarray, fmt: str, durations_ms: Sequence[float], quality: int,
                  icc_profile: Optional[bytes] = None) -> bytes:
    """Frames ``(n, rows, cols[, 3])`` as one animated ``fmt`` image, each shown for its duration."""
    return encode_animation(frames, fmt, durations_ms, quality=quality, icc_profile=icc_profile)


def multipart(parts: List[bytes], media_type: str) -> Tuple[bytes, str]:
    """A ``multipart/related`` body of ``parts`` of one media type, and its Content-Type (PS3.18 8.6.1.2)."""
    boundary = uuid.uuid4().hex
    chunks = []
    for part in parts:
        chunks.append(f"--{boundary}\r\nContent-Type: {media_type}\r\nContent-Length: {len(part)}\r\n\r\n"
                      .encode("ascii"))
        chunks.append(part)
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(chunks), f'multipart/related; type="{media_type}"; boundary={boundary}'
