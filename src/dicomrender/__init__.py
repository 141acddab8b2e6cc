"""dicomrender: correct 8-bit display images from DICOM pixel data, fast.

>>> import dicomrender
>>> pixels = dicomrender.render("ct.dcm", preset="brain")   # uint8 (rows, cols)
>>> dicomrender.save("ct.dcm", "ct.jpg", window=(40, 80))

The public API is what this module exports; the layers below it (see docs/ARCHITECTURE.md) are
``rendering`` and ``batch`` (orchestration), ``dicom`` and ``presets``, ``engine`` and the
compiled ``_kernel``.
"""

from . import errors
from ._types import VOILut, Window
from .batch import convert
from .dicom.header import DEFAULT_MAX_PIXELS
from .engine import get_threads, set_threads, window
from .errors import (
    DicomRenderError,
    DuplicateSliceError,
    FrameTimingWarning,
    HeaderWindowWarning,
    InvalidArgumentError,
    InvalidDatasetError,
    InvalidWindowError,
    MissingCodecError,
    NotDicomError,
    OutputPathError,
    PixelDataError,
    PixelLimitError,
    PluginError,
    PluginWarning,
    PresentationStateError,
    PresetError,
    SeriesError,
    SeriesGeometryError,
    SeriesSelectionError,
    SeriesWarning,
    UnknownPresetError,
    UnsupportedImageError,
)
from .explain import Explanation, explain
from .presets import Preset, RenderContext, get_preset, hookimpl, list_presets, register_plugin
from .rendering import render, save
from .series import SeriesDataset, find_series, render_series

__version__ = "0.1.0"

__all__ = [
    "render",
    "save",
    "explain",
    "Explanation",
    "convert",
    "find_series",
    "render_series",
    "SeriesDataset",
    "window",
    "Window",
    "VOILut",
    "Preset",
    "RenderContext",
    "hookimpl",
    "register_plugin",
    "get_preset",
    "list_presets",
    "set_threads",
    "get_threads",
    "DEFAULT_MAX_PIXELS",
    "errors",
    "DicomRenderError",
    "DuplicateSliceError",
    "FrameTimingWarning",
    "HeaderWindowWarning",
    "InvalidArgumentError",
    "SeriesError",
    "SeriesGeometryError",
    "SeriesSelectionError",
    "SeriesWarning",
    "InvalidDatasetError",
    "InvalidWindowError",
    "MissingCodecError",
    "NotDicomError",
    "OutputPathError",
    "PixelDataError",
    "PixelLimitError",
    "PluginError",
    "PluginWarning",
    "PresetError",
    "PresentationStateError",
    "UnknownPresetError",
    "UnsupportedImageError",
]
