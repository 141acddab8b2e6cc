"""dicomrender: correct 8-bit display images from DICOM pixel data, fast.

>>> import dicomrender
>>> pixels = dicomrender.render("ct.dcm", preset="brain")   # uint8 (rows, cols)
>>> dicomrender.save("ct.dcm", "ct.jpg", window=(40, 80))
"""

from . import errors
from .errors import (DicomRenderError, InvalidDatasetError, InvalidWindowError, MissingCodecError, NotDicomError,
                     PixelDataError, PresetError, PluginError, UnknownPresetError, UnsupportedImageError)
from .hookspecs import hookimpl
from .presets import Preset, get_preset, list_presets
from .render import render, save
from .convert import convert  # the function; the module's other names: from dicomrender.convert import ...
from .windowing import Window, get_threads, set_threads, window

__version__ = "0.1.0"

__all__ = [
    "render",
    "save",
    "convert",
    "window",
    "Window",
    "Preset",
    "hookimpl",
    "get_preset",
    "list_presets",
    "set_threads",
    "get_threads",
    "errors",
    "DicomRenderError",
    "InvalidDatasetError",
    "InvalidWindowError",
    "MissingCodecError",
    "NotDicomError",
    "PixelDataError",
    "PresetError",
    "PluginError",
    "UnknownPresetError",
    "UnsupportedImageError",
]
