"""The exceptions dicomrender raises.

Every error is a :class:`DicomRenderError`; those caused by a bad value also
derive from :class:`ValueError` so callers that already catch ``ValueError``
keep working.  Messages name the file (when known) and the DICOM attribute.
"""

from __future__ import annotations

import operator

__all__ = [
    "DicomRenderError",
    "InvalidArgumentError",
    "InvalidWindowError",
    "InvalidDatasetError",
    "NotDicomError",
    "PixelDataError",
    "UnsupportedImageError",
    "MissingCodecError",
    "UnknownPresetError",
    "PresetError",
    "PluginError",
    "PixelLimitError",
    "OutputPathError",
    "PluginWarning",
    "DicomRenderWarning",
    "HeaderWindowWarning",
    "SeriesError",
    "SeriesSelectionError",
    "SeriesGeometryError",
    "DuplicateSliceError",
    "SeriesWarning",
    "PresentationStateError",
    "FrameTimingWarning",
]


class DicomRenderError(Exception):
    """Base class of every error raised by dicomrender.

    Parameters
    ----------
    message : str
        What is wrong.
    filename : str, optional
        The file the error concerns; prefixed to the message when given.
    attribute : str, optional
        The DICOM attribute (keyword) or argument at fault.
    """

    def __init__(self, message: str, *, filename: str | None = None, attribute: str | None = None):
        self.filename = filename
        self.attribute = attribute
        self.detail = message
        text = f"{filename}: {message}" if filename else message
        super().__init__(text)

    def __reduce__(self):
        # keeps the keyword-only fields through pickling (process pools)
        return (_rebuild, (type(self), self.detail, self.filename, self.attribute))

    def with_filename(self, filename: str | None) -> "DicomRenderError":
        """Return a copy of this error that names ``filename``."""
        if not filename or self.filename:
            return self
        err = _rebuild(type(self), self.detail, filename, self.attribute)
        err.__cause__ = self.__cause__
        return err


def _rebuild(cls, message, filename, attribute):
    err = cls.__new__(cls)
    DicomRenderError.__init__(err, message, filename=filename, attribute=attribute)
    return err


class InvalidArgumentError(DicomRenderError, ValueError):
    """An argument of a dicomrender call has a value it cannot take (``threads=0``, ``quality=1000``, two
    channels for a JPEG file...); ``attribute`` names the argument.  Arguments of the wrong type raise
    :class:`TypeError`, as Python does."""


class InvalidWindowError(DicomRenderError, ValueError):
    """A window centre/width or VOI function that cannot be used (NaN, width too small...)."""


class InvalidDatasetError(DicomRenderError, ValueError):
    """A header attribute has a value that makes no sense (e.g. BitsStored > BitsAllocated)."""


class NotDicomError(DicomRenderError, ValueError):
    """The input is not a DICOM file."""


class PixelDataError(DicomRenderError, ValueError):
    """Pixel Data is missing, truncated or cannot be decoded."""


class PixelLimitError(PixelDataError):
    """The image is larger than the caller allows (``max_pixels``): refused before anything is decoded.

    A subclass of :class:`PixelDataError`, so code catching that keeps working, but distinguishable
    from a corrupt file.
    """


class UnsupportedImageError(DicomRenderError, ValueError):
    """The image is valid DICOM but uses something dicomrender does not render."""


class MissingCodecError(UnsupportedImageError):
    """Compressed Pixel Data needs a decoder that is not installed."""


class UnknownPresetError(DicomRenderError, KeyError):
    """No preset is registered under the requested name."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return Exception.__str__(self)


class PresetError(DicomRenderError, ValueError):
    """A preset cannot be applied to this image (e.g. an HU preset on a non-CT image)."""


class PluginError(DicomRenderError):
    """A preset plugin is inconsistent (e.g. registers a name twice)."""


class OutputPathError(DicomRenderError, ValueError):
    """An output path would fall outside the output folder (``..``, absolute name or symlinked folder),
    or would replace an input."""


class PresentationStateError(DicomRenderError, ValueError):
    """A presentation state cannot be applied to the image: not a Grayscale Softcopy Presentation State,
    it does not reference the image (series, image or frame), or one of its attributes is unusable.
    ``filename`` names the state file, ``attribute`` the attribute at fault."""


class DicomRenderWarning(UserWarning):
    """Base class of the warnings about an image that dicomrender renders anyway; like the errors, it
    names the file (when known) and the attribute (``filename``, ``attribute``)."""

    def __init__(self, message: str, *, filename: str | None = None, attribute: str | None = None):
        self.filename = filename
        self.attribute = attribute
        self.detail = message
        super().__init__(f"{filename}: {message}" if filename else message)

    def __reduce__(self):
        return (_rebuild_warning, (type(self), self.detail, self.filename, self.attribute))

    def with_filename(self, filename: str | None) -> "DicomRenderWarning":
        """This warning naming ``filename`` (itself when it names a file already or ``filename`` is None)."""
        if not filename or self.filename:
            return self
        return type(self)(self.detail, filename=filename, attribute=self.attribute)


def _rebuild_warning(cls, message, filename, attribute):
    return cls(message, filename=filename, attribute=attribute)


class HeaderWindowWarning(DicomRenderWarning):
    """A header window that cannot be used (WindowWidth below 1 with LINEAR, 0 or NaN...) was skipped, as
    dcmtk skips it: the header's VOI LUT, else the ``auto`` window, applied instead."""


class PluginWarning(UserWarning):
    """A preset plugin could not be loaded or its hook failed; it was skipped."""


class SeriesError(DicomRenderError, ValueError):
    """A series cannot be made into one volume; ``files`` lists the files concerned (the message names
    them too)."""

    files: tuple = ()

    def __init__(self, message: str, *, files=(), filename: str | None = None, attribute: str | None = None):
        self.files = tuple(str(f) for f in files)
        super().__init__(message, filename=filename, attribute=attribute)

    def __reduce__(self):
        return (_rebuild_series, (type(self), self.detail, self.files, self.filename, self.attribute))


def _rebuild_series(cls, message, files, filename, attribute):
    err = _rebuild(cls, message, filename, attribute)
    err.files = tuple(files)
    return err


class SeriesSelectionError(SeriesError):
    """The source holds several image series and no ``series_uid`` chose one (the message lists them),
    the chosen one is not there, or there is no image series at all."""


class SeriesGeometryError(SeriesError):
    """The slices of a series do not form one volume: mixed orientation or size, positions on some
    slices only."""


class DuplicateSliceError(SeriesGeometryError):
    """Two or more slices of a series lie at the same position (copies, or echoes / time points)."""


class FrameTimingWarning(UserWarning):
    """A frame timing attribute (Frame Time, Frame Time Vector, Cine Rate, Recommended Display Frame
    Rate) is unusable (zero, negative, NaN, absurd, of the wrong length): the next source of the frame
    rate is used, at worst the default rate."""


class SeriesWarning(UserWarning):
    """Something about a series worth knowing but not fatal: irregular spacing, missing slices, objects
    without pixels skipped, header windows that differ between slices."""


def integer_argument(value, low: int, high: int, attribute: str) -> int:
    """``value`` as an int from ``low`` to ``high``: :class:`TypeError` for a non-integer (bool included),
    :class:`InvalidArgumentError` naming ``attribute`` outside the range.  The one check of integer
    arguments (threads, JPEG quality, PNG compression level)."""
    if isinstance(value, bool):
        raise TypeError(f"{attribute} must be an integer, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{attribute} must be an integer, got {type(value).__name__} {value!r}") from None
    if not low <= number <= high:
        raise InvalidArgumentError(f"{attribute} must be from {low} to {high}, got {number}", attribute=attribute)
    return number
