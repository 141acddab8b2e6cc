"""Display shutters: masks against hand-written pixels, the Display Shutter module's parsing and its hostile
values, and the image's own shutters through ``render(shutters=True)``."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

import dicomrender
from dicomrender.dicom.shutters import MAX_POLYGON_VERTICES, read_shutters, shutter_value
from dicomrender.display import annotate
from dicomrender.display.shutter import circle_mask, polygon_mask, rectangle_mask, visible_mask
from dicomrender.errors import InvalidDatasetError

from .synthetic import make_dataset


def test_rectangle_is_inclusive_and_one_based():
    expected = np.zeros((4, 5), dtype=bool)
    expected[1:3, 0:4] = True  # rows 2..3, columns 1..4
    np.testing.assert_array_equal(rectangle_mask(4, 5, left=1, right=4, upper=2, lower=3), expected)


def test_rectangle_outside_or_inverted_shows_nothing():
    assert not rectangle_mask(4, 4, 10, 20, 1, 4).any()
    assert not rectangle_mask(4, 4, 3, 2, 1, 4).any()
    assert rectangle_mask(4, 4, -(1 << 24), 1 << 24, -5, 100).all()


def test_circle_includes_its_boundary():
    # centre row 3, column 3, radius 1: the centre and its 4 neighbours (distance exactly 1)
    expected = np.zeros((5, 5), dtype=bool)
    expected[2, 1:4] = expected[1:4, 2] = True
    np.testing.assert_array_equal(circle_mask(5, 5, 3, 3, 1), expected)
    assert circle_mask(5, 5, 3, 3, 0).sum() == 1


def test_polygon_square_matches_the_rectangle():
    square = np.array([[2, 2], [2, 5], [4, 5], [4, 2]], dtype=float)  # rows 2..4, columns 2..5
    np.testing.assert_array_equal(polygon_mask(6, 7, square), rectangle_mask(6, 7, 2, 5, 2, 4))


def test_polygon_diamond_and_concave_shapes():
    rows, columns = np.mgrid[1:12, 1:12]
    diamond = np.array([[2, 6], [6, 10], [10, 6], [6, 2]], dtype=float)
    np.testing.assert_array_equal(polygon_mask(11, 11, diamond), np.abs(rows - 6) + np.abs(columns - 6) <= 4)
    # an L: rows 1..6 x columns 1..2, plus rows 5..6 x columns 3..6
    ell = np.array([[1, 1], [1, 2], [5, 2], [5, 6], [6, 6], [6, 1]], dtype=float)
    expected = ((rows <= 6) & (columns <= 2)) | ((rows >= 5) & (rows <= 6) & (columns <= 6))
    np.testing.assert_array_equal(polygon_mask(11, 11, ell), expected)


def test_polygon_self_intersecting_uses_even_odd():
    # two overlapping squares drawn as one path through a shared corner: the overlap is outside
    path = np.array([[2, 2], [2, 8], [8, 8], [8, 2], [2, 2], [4.5, 4.5], [4.5, 10.5], [10.5, 10.5],
                     [10.5, 4.5], [4.5, 4.5]], dtype=float)
    mask = polygon_mask(12, 12, path)
    assert mask[2, 2] and mask[9, 9]  # rows 3, 10 (1-based): inside one square only
    assert not mask[5, 5]  # centre (6, 6) lies inside both: even


def test_polygon_far_outside_and_huge_coordinates():
    far = np.array([[-1e7, -1e7], [-1e7, 1e7], [1e7, 1e7], [1e7, -1e7]], dtype=float)
    assert polygon_mask(3, 3, far).all()
    assert not polygon_mask(3, 3, far + 3e7).any()


def test_visible_mask_intersects_every_shape_and_excludes_bitmap():
    bitmap = np.zeros((5, 5), dtype=bool)
    bitmap[2, 2] = True
    shown = visible_mask(5, 5, rectangle=(2, 5, 1, 5), circle=(3, 3, 2), bitmap=bitmap)
    expected = rectangle_mask(5, 5, 2, 5, 1, 5) & circle_mask(5, 5, 3, 3, 2)
    expected[2, 2] = False
    np.testing.assert_array_equal(shown, expected)


def _shutter_ds(**attributes) -> Dataset:
    """Attributes as keywords; bytes values become raw elements, decoded (or not) when read, as from a file."""
    ds = Dataset()
    for keyword, value in attributes.items():
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, bytes) for v in items):
            raw = b"\\".join(v if isinstance(v, bytes) else str(v).encode() for v in items)
            tag = Tag(keyword)
            ds[tag] = RawDataElement(tag, dictionary_VR(tag), len(raw), raw, 0, False, True)
        else:
            setattr(ds, keyword, value)
    return ds


def test_read_shutters_values():
    ds = _shutter_ds(ShutterShape=["RECTANGULAR", "CIRCULAR"], ShutterLeftVerticalEdge=2, ShutterRightVerticalEdge=9,
                     ShutterUpperHorizontalEdge=3, ShutterLowerHorizontalEdge=8, CenterOfCircularShutter=[5, 6],
                     RadiusOfCircularShutter=4, ShutterPresentationValue=40000)
    shutters = read_shutters(ds)
    assert shutters.rectangle == (2, 9, 3, 8) and shutters.circle == (5, 6, 4)
    assert shutters.value == 155 and shutters.shapes == ("RECTANGULAR", "CIRCULAR")  # floor(255*40000/65535)
    assert read_shutters(Dataset()) is None


def test_shutter_presentation_value_scaling():
    assert [shutter_value(_shutter_ds(ShutterPresentationValue=p)) for p in (0, 257, 32768, 65535)] == [0, 1, 127, 255]
    assert shutter_value(Dataset()) == 0


@pytest.mark.parametrize("attributes,keyword", [
    (dict(ShutterShape="CIRCULAR", CenterOfCircularShutter=[1, 1], RadiusOfCircularShutter=-3),
     "RadiusOfCircularShutter"),
    (dict(ShutterShape="CIRCULAR", CenterOfCircularShutter=[1, 1], RadiusOfCircularShutter=b"NaN "),
     "RadiusOfCircularShutter"),
    (dict(ShutterShape="CIRCULAR", CenterOfCircularShutter=[b"1e999", 1], RadiusOfCircularShutter=3),
     "CenterOfCircularShutter"),
    (dict(ShutterShape="CIRCULAR", CenterOfCircularShutter=[1], RadiusOfCircularShutter=3), "CenterOfCircularShutter"),
    (dict(ShutterShape="RECTANGULAR", ShutterLeftVerticalEdge=1), "ShutterRightVerticalEdge"),
    (dict(ShutterShape="POLYGONAL", VerticesOfThePolygonalShutter=[1, 1, 2, 2]), "VerticesOfThePolygonalShutter"),
    (dict(ShutterShape="OVAL"), "ShutterShape"),
    (dict(ShutterShape=["BITMAP", "CIRCULAR"]), "ShutterShape"),
    (dict(ShutterShape="BITMAP", ShutterOverlayGroup=0x6001), "ShutterOverlayGroup"),
    (dict(ShutterShape="RECTANGULAR", ShutterLeftVerticalEdge=1, ShutterRightVerticalEdge=2,
          ShutterUpperHorizontalEdge=1, ShutterLowerHorizontalEdge=2, ShutterPresentationValue=70000),
     "ShutterPresentationValue"),
])
def test_bad_shutter_values_name_the_attribute(attributes, keyword):
    with pytest.raises(InvalidDatasetError) as info:
        read_shutters(_shutter_ds(**attributes))
    assert info.value.attribute == keyword


def test_millions_of_vertices_are_refused_before_conversion():
    ds = _shutter_ds(ShutterShape="POLYGONAL", VerticesOfThePolygonalShutter=[b"12"] * (2 * 1_000_000))
    with pytest.raises(InvalidDatasetError, match=str(MAX_POLYGON_VERTICES)) as info:
        read_shutters(ds)
    assert info.value.attribute == "VerticesOfThePolygonalShutter"


def test_many_vertices_within_the_bound_are_drawn():
    # a regular polygon of MAX_POLYGON_VERTICES vertices: practically the circle of radius 20
    t = np.linspace(0, 2 * np.pi, MAX_POLYGON_VERTICES, endpoint=False)
    vertices = np.stack([32 + 20 * np.sin(t), 32 + 20 * np.cos(t)], axis=1)
    mask = polygon_mask(64, 64, vertices)
    circle = circle_mask(64, 64, 32, 32, 20)
    assert np.count_nonzero(mask != circle) <= 8  # pixels within float noise of the circle itself


def test_image_shutters_only_when_asked():
    pixels = np.arange(36, dtype=np.uint16).reshape(6, 6) * 7
    ds = make_dataset(pixels, modality="CR", WindowCenter="127.5", WindowWidth="256", ShutterShape="RECTANGULAR",
                      ShutterLeftVerticalEdge=2, ShutterRightVerticalEdge=4, ShutterUpperHorizontalEdge=3,
                      ShutterLowerHorizontalEdge=6, ShutterPresentationValue=65535)
    plain = dicomrender.render(ds)
    np.testing.assert_array_equal(plain, np.clip(pixels, 0, 255).astype(np.uint8))  # c=127.5 w=256: identity
    shuttered = dicomrender.render(ds, shutters=True)
    expected = plain.copy()
    expected[~rectangle_mask(6, 6, 2, 4, 3, 6)] = 255
    np.testing.assert_array_equal(shuttered, expected)


def test_annotation_segments_are_clipped_before_drawing():
    assert annotate.clip_segment(-1e9, 2.0, 1e9, 2.0, 10, 10) == pytest.approx((-1.0, 2.0, 10.0, 2.0), abs=1e-6)
    assert annotate.clip_segment(-5, -5, -1.5, -2, 10, 10) is None
    image = np.zeros((8, 8), dtype=np.uint8)
    annotate.draw(image, [("POLYLINE", np.array([[-1e9, 3.5], [1e9, 3.5]]), False)])
    np.testing.assert_array_equal(image[3], 255)
    assert image.sum() == 8 * 255
