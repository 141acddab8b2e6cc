"""Reading back the animations dicomrender writes, with Pillow (shared by the animation tests)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def decode_animation(path):
    """Frames (RGB arrays) and durations (ms) of an animated image, by Pillow."""
    frames, durations = [], []
    with Image.open(path) as image:
        for k in range(getattr(image, "n_frames", 1)):
            image.seek(k)
            frames.append(np.asarray(image.convert("RGB")))
            durations.append(image.info.get("duration"))
    return frames, durations
