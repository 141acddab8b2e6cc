"""Sorting the slices of a series into a volume, checking they form one, and its geometry.

Slices are sorted by Image Position (Patient) projected on the slice normal, the cross product of
the row and column directions of Image Orientation (Patient): ascending, as ITK, GDCM and
dicom-numpy sort (on an axial series, feet to head).  Only when no slice has a position does
InstanceNumber decide (then the order of the files).  A gantry-tilted series is sorted along the
true normal of its planes; its slice step is not parallel to that normal, and the affine says so
(its third column is the step between slice origins).

Coordinates are DICOM patient coordinates (LPS: x to the patient's left, y to the back, z to the
head), in millimetres.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DuplicateSliceError, SeriesGeometryError
from .sources import SliceHeader

__all__ = ["Geometry", "sort_slices", "describe_files", "first_position", "ras_of", "ORIENTATION_TOLERANCE"]

#: Largest difference between direction cosines of slices that share an orientation.
ORIENTATION_TOLERANCE = 1e-4
#: Spacing between slices may deviate this much (relative) from the median before it is irregular.
SPACING_TOLERANCE = 0.01
#: Files a message lists before it says "and N more".
_LISTED = 5


def describe_files(names: Sequence[str], listed: int = _LISTED) -> str:
    """``a, b, c and 4 more``: files named in a message."""
    names = list(names)
    text = ", ".join(names[:listed])
    return text + (f" and {len(names) - listed} more" if len(names) > listed else "")


def _label(header: SliceHeader) -> str:
    return header.name if header.frames == 1 else f"{header.name} frame {header.frame + 1}"


@dataclass(frozen=True)
class Geometry:
    """Where the slices of a volume are, in patient coordinates (LPS, mm).

    Attributes
    ----------
    positions : numpy.ndarray or None
        ``(slices, 3)``: Image Position (Patient) of each slice, in slice order; None when the
        slices have none.
    orientation : numpy.ndarray or None
        ``(3, 3)``: ITK's direction matrix; its columns are the directions of increasing column
        index (the row direction cosines), row index (the column cosines) and slice index (the
        normal, their cross product).
    spacing : (float or None, float or None, float or None)
        In array axis order ``(slice, row, column)``: the distance between slice planes along the
        normal (the median), then Pixel Spacing (row spacing, column spacing).
    affine : numpy.ndarray or None
        ``(4, 4)``: ``affine @ [column, row, slice, 1]`` is the LPS position of the centre of voxel
        ``volume[slice, row, column]``.  Its columns are the row direction x column spacing, the
        column direction x row spacing, the step between slice origins, and the origin.  For
        NIfTI (RAS) use :attr:`ras_affine` with ``volume.transpose(2, 1, 0)``.
    sorted_by : str
        "position", "instance number" or "file order".
    gaps : tuple of (int, int)
        ``(slice index, slices missing after it)`` where the step is a multiple of the median.
    irregular : bool
        Whether any step between slices differs from the median by more than 1 %.
    tilt : float
        Degrees between the slice step and the normal (gantry tilt); 0 for an orthogonal stack.
    warnings : tuple of str
        What was warned about (gaps, irregular spacing).
    """

    positions: Optional[np.ndarray]
    orientation: Optional[np.ndarray]
    spacing: Tuple[Optional[float], Optional[float], Optional[float]]
    affine: Optional[np.ndarray]
    sorted_by: str
    gaps: Tuple[Tuple[int, int], ...] = ()
    irregular: bool = False
    tilt: float = 0.0
    warnings: Tuple[str, ...] = field(default=())

    @property
    def origin(self) -> Optional[np.ndarray]:
        """Image Position (Patient) of the first slice."""
        return first_position(self.positions)

    @property
    def ras_affine(self) -> Optional[np.ndarray]:
        """The affine in RAS (NIfTI, nibabel) coordinates: x and y of :attr:`affine` negated."""
        return ras_of(self.affine)


def first_position(positions: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """The first slice's position of ``(slices, 3)`` positions, None without positions."""
    return None if positions is None else positions[0]


def ras_of(affine: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """An LPS affine in RAS (NIfTI, nibabel): x and y negated; None stays None."""
    return None if affine is None else np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine


def _check_sizes(headers: Sequence[SliceHeader]) -> None:
    sizes = Counter((h.rows, h.columns) for h in headers)
    if len(sizes) > 1:
        common = sizes.most_common(1)[0][0]
        odd = [h for h in headers if (h.rows, h.columns) != common]
        groups = ", ".join(f"{r}x{c} ({n} slice{'s' if n > 1 else ''})" for (r, c), n in sizes.most_common())
        raise SeriesGeometryError(f"slices of different sizes (Rows x Columns): {groups}; not "
                                  f"{common[0]}x{common[1]}: {describe_files([_label(h) for h in odd])}",
                                  files=[h.name for h in odd], attribute="Rows")


def _check_orientation(headers: Sequence[SliceHeader]) -> np.ndarray:
    cosines = np.array([h.orientation for h in headers], dtype=np.float64)
    reference = cosines[0]
    odd = np.max(np.abs(cosines - reference), axis=1) > ORIENTATION_TOLERANCE
    if odd.any():
        others = [h for h, o in zip(headers, odd) if o]
        raise SeriesGeometryError(
            f"slices of different orientation (ImageOrientationPatient): {len(others)} of {len(headers)} differ "
            f"from {_label(headers[0])} ({', '.join(f'{v:g}' for v in reference)}): "
            f"{describe_files([_label(h) for h in others])}", files=[h.name for h in others],
            attribute="ImageOrientationPatient")
    row, column = reference[:3], reference[3:]
    normal = np.cross(row, column)
    norm = float(np.linalg.norm(normal))
    if not (0.99 < np.linalg.norm(row) < 1.01 and 0.99 < np.linalg.norm(column) < 1.01) or norm < 0.99:
        raise SeriesGeometryError(f"ImageOrientationPatient {tuple(reference)} is not two orthogonal unit vectors",
                                  files=[headers[0].name], attribute="ImageOrientationPatient")
    return np.column_stack([row, column, normal / norm])


def _duplicates(headers: Sequence[SliceHeader], order: np.ndarray, distance: np.ndarray) -> None:
    steps = np.diff(distance[order])
    positive = steps[steps > 0]
    tolerance = max(1e-5, 1e-3 * float(np.median(positive))) if positive.size else 1e-5
    same = np.flatnonzero(steps <= tolerance)
    if same.size:
        pairs = [(_label(headers[order[i]]), _label(headers[order[i + 1]])) for i in same]
        files = sorted({name for pair in pairs for name in pair})
        where = "; ".join(f"{a} and {b}" for a, b in pairs[:_LISTED])
        more = f" and {len(pairs) - _LISTED} more pairs" if len(pairs) > _LISTED else ""
        raise DuplicateSliceError(
            f"{len(same)} slice(s) at the same position as another (copies of a file, or several echoes, time "
            f"points or stacks in one series: choose the files of one): {where}{more}",
            files=files, attribute="ImagePositionPatient")


def _spacing_report(steps: np.ndarray) -> Tuple[float, List[Tuple[int, int]], bool, List[str]]:
    """Median step, gaps (index, missing), irregularity and the warnings to give."""
    median = float(np.median(steps))
    gaps: List[Tuple[int, int]] = []
    irregular = False
    for i, step in enumerate(steps):
        ratio = step / median
        k = int(round(ratio))
        if k >= 2 and abs(ratio - k) <= 0.1:
            gaps.append((i, k - 1))
        elif abs(ratio - 1) > SPACING_TOLERANCE:
            irregular = True
    notes = []
    if gaps:
        missing = sum(m for _, m in gaps)
        where = ", ".join(f"{m} after slice {i}" for i, m in gaps[:_LISTED])
        notes.append(f"{missing} slice(s) missing (the step is a multiple of the median spacing {median:g} mm): "
                     f"{where}")
    if irregular:
        notes.append(f"irregular slice spacing: steps from {float(steps.min()):g} to {float(steps.max()):g} mm "
                     f"(median {median:g} mm)")
    return median, gaps, irregular, notes


def sort_slices(headers: Sequence[SliceHeader]) -> Tuple[List[SliceHeader], Geometry]:
    """The slices of one series in volume order, and their geometry.

    Raises
    ------
    SeriesGeometryError
        Slices of different sizes or orientations, positions on some slices only.
    DuplicateSliceError
        Two slices at the same position.
    """
    headers = list(headers)
    if not headers:
        raise SeriesGeometryError("the series has no image slices")
    _check_sizes(headers)
    first = headers[0]
    pixel_spacing = first.pixel_spacing
    row_spacing, column_spacing = pixel_spacing if pixel_spacing is not None else (None, None)
    with_position = [h.position is not None for h in headers]
    if any(with_position) and not all(with_position):
        missing = [h for h, has in zip(headers, with_position) if not has]
        raise SeriesGeometryError(f"{len(missing)} of {len(headers)} slices have no ImagePositionPatient: "
                                  f"{describe_files([_label(h) for h in missing])}", files=[h.name for h in missing],
                                  attribute="ImagePositionPatient")
    with_orientation = all(h.orientation is not None for h in headers)
    if not all(with_position) or not with_orientation:
        return _sort_without_positions(headers, (None, row_spacing, column_spacing))
    direction = _check_orientation(headers)
    positions = np.array([h.position for h in headers], dtype=np.float64)
    distance = positions @ direction[:, 2]
    order = np.argsort(distance, kind="stable")
    _duplicates(headers, order, distance)
    positions, distance = positions[order], distance[order]
    ordered = [headers[i] for i in order]
    notes: List[str] = []
    gaps: List[Tuple[int, int]] = []
    irregular = False
    median: Optional[float]
    if len(ordered) > 1:
        median, gaps, irregular, notes = _spacing_report(np.diff(distance))
        step = (positions[-1] - positions[0]) * (median / (distance[-1] - distance[0]))
    else:  # one slice: the header's spacing, else a unit step along the normal
        median = first.slice_spacing or first.slice_thickness
        step = direction[:, 2] * (median if median else 1.0)
    cosine = abs(float(step @ direction[:, 2])) / float(np.linalg.norm(step))
    tilt = math.degrees(math.acos(min(1.0, cosine)))
    affine = None
    if row_spacing is not None and column_spacing is not None:
        affine = np.eye(4)
        affine[:3, 0] = direction[:, 0] * column_spacing
        affine[:3, 1] = direction[:, 1] * row_spacing
        affine[:3, 2] = step
        affine[:3, 3] = positions[0]
    spacing = (float(median) if median else None, row_spacing, column_spacing)
    return ordered, Geometry(positions, direction, spacing, affine, "position", tuple(gaps), irregular,
                             round(tilt, 6) if tilt > 1e-6 else 0.0, tuple(notes))


def _sort_without_positions(headers: List[SliceHeader], spacing) -> Tuple[List[SliceHeader], Geometry]:
    if all(h.instance is not None for h in headers):
        keys: Dict[int, tuple] = {id(h): (h.instance, h.frame) for h in headers}
        sorted_by = "instance number"
        ordered = sorted(headers, key=lambda h: keys[id(h)])
    else:
        sorted_by = "file order"
        ordered = list(headers)
    note = (f"the slices have no ImagePositionPatient and ImageOrientationPatient: sorted by {sorted_by}, "
            f"no affine")
    return ordered, Geometry(None, None, spacing, None, sorted_by, warnings=(note,))
