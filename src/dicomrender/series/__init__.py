"""Series and volumes: finding the series of a folder, rendering one to a sorted, windowed volume with its
geometry, and a map-style dataset of its slices for training pipelines.

Orchestration, beside :mod:`dicomrender.batch` (neither imports the other): it reads headers and pixels
through :mod:`dicomrender.dicom`, chooses windows through :mod:`dicomrender.presets` and renders through
:mod:`dicomrender.engine`.
"""

from .dataset import SeriesDataset
from .find import SeriesInfo, find_series
from .geometry import Geometry
from .volume import Volume, render_series

__all__ = ["find_series", "render_series", "SeriesDataset", "SeriesInfo", "Volume", "Geometry"]
