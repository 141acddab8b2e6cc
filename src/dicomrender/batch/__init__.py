"""Batch conversion of DICOM files and folder trees to JPEG or PNG: :func:`convert` and its report."""

from ..dicom.source import is_dicom_header
from ..io import TEMP_PREFIX, TEMP_SUFFIX
from .api import convert
from .model import REPORT_COLUMNS, ConvertOptions, ConvertRecord, ConvertReport, ConvertTask
from .walk import DICOM_SUFFIXES, collect_tasks
from .worker import convert_file

__all__ = ["convert", "convert_file", "collect_tasks", "ConvertReport", "ConvertRecord", "ConvertOptions",
           "ConvertTask", "REPORT_COLUMNS", "DICOM_SUFFIXES", "TEMP_PREFIX", "TEMP_SUFFIX", "is_dicom_header"]
