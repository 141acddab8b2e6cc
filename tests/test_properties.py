"""Property tests of the public API against the float64 reference, with hostile values.

Every generated case either returns exactly what :mod:`dicomrender._reference`
computes, or raises a :class:`~dicomrender.errors.DicomRenderError` -- and then
only when the input really is invalid, which each test decides by itself from
PS3.3 (windows: C.11.2.1.2; stored values: C.7.6.3.1; LUTs: C.11.1.1).  Numpy
warnings are errors here: nothing may leak out of the pipeline.

``DICOMRENDER_PROPERTY_EXAMPLES`` scales the number of examples (default 300
per test) for longer local runs.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import dicomrender
from dicomrender import _kernel, _reference
from dicomrender._types import ModalityLut, Rescale, StoredFormat, VOILut
from dicomrender.engine import render_stored
from dicomrender.errors import (
    DicomRenderError,
    InvalidDatasetError,
    InvalidWindowError,
    PixelDataError,
    UnsupportedImageError,
)

from .synthetic import make_dataset

EXAMPLES = int(os.environ.get("DICOMRENDER_PROPERTY_EXAMPLES", "300"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # numpy floating-point warnings

FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
SPECIAL = (0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 40.5, 255.0, 4096.0, -32768.0, 65535.0, 2.0 ** 31, 2.0 ** 53,
           1e15, 1e308, -1e308, 1.7976931348623157e308, 1e-308, 5e-324, math.nan, math.inf, -math.inf)


def mostly(usual, hostile, one_in: int = 8):
    """``usual`` values, and ``hostile`` ones about once in ``one_in`` draws."""
    # a wide integer taken modulo: hypothesis favours small and boundary integers, which a
    # narrow range would turn into "hostile" far more often than one in ``one_in``
    return st.integers(0, 1 << 20).flatmap(lambda i: hostile if i % one_in == one_in // 2 else usual)


finite = st.one_of(st.sampled_from([v for v in SPECIAL if math.isfinite(v)]), st.floats(-1e5, 1e5),
                   st.integers(-2 ** 40, 2 ** 40).map(float), st.floats(allow_nan=False, allow_infinity=False))
hostile = st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=True, allow_infinity=True))
numbers = mostly(finite, hostile, 20)
widths = mostly(st.one_of(st.sampled_from([1.0, 1.5, 2.0, 80.0, 101.0, 255.0, 4096.0, 65536.0, 1e15, 1e308, 0.5,
                                           1e-3, 1e-308]), st.floats(1.0, 1e6), st.floats(0.0, 1e308)),
                hostile, 20)
INTEGER_DTYPES = ("u1", "i1", "<u2", ">u2", "<i2", ">i2", "<u4", ">u4", "<i4", ">i4")
FLOAT_DTYPES = ("<f4", ">f4", "<f8", ">f8")
LAYOUTS = ("C", "F", "strided", "reversed", "transposed", "broadcast")


def _layout(array: np.ndarray, layout: str) -> np.ndarray:
    """The same values (or a broadcast of them) in another memory layout."""
    if layout == "F":
        return np.asfortranarray(array)
    if layout == "strided" and array.ndim:
        return np.repeat(array, 3, axis=-1)[..., ::3]
    if layout == "reversed" and array.ndim:
        return np.ascontiguousarray(array[..., ::-1])[..., ::-1]
    if layout == "transposed":
        return np.ascontiguousarray(array.T).T
    if layout == "broadcast":  # stride 0 on a new leading axis
        return np.broadcast_to(array, (2,) + array.shape)
    return array


shapes = mostly(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=9),
                st.sampled_from([(), (0,), (1,), (1, 1), (0, 3), (3, 0)]), 6)


@st.composite
def pixel_arrays(draw, dtypes):
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    shape = draw(shapes)
    if dtype.kind == "f":
        elements = st.floats(width=dtype.itemsize * 8, allow_nan=True, allow_infinity=True)
    else:
        info = np.iinfo(dtype)
        elements = st.integers(int(info.min), int(info.max))
    array = draw(hnp.arrays(dtype, shape, elements=elements))
    return _layout(array, draw(st.sampled_from(LAYOUTS)))


def _window_problem(center, width, function) -> bool:
    """PS3.3 C.11.2.1.2: finite values; LINEAR needs width >= 1, the others width > 0."""
    if not (math.isfinite(center) and math.isfinite(width)):
        return True
    return width < 1 if function == "LINEAR" else width <= 0


def _normal(function) -> str:
    return str(function or "LINEAR").strip().upper().replace(" ", "_")


@st.composite
def window_arguments(draw):
    n = draw(mostly(st.sampled_from((1, 1, 1, 2, 3, 4)), st.sampled_from((0, 5)), 15))
    centers = [draw(numbers) for _ in range(n)]
    window_widths = [draw(widths) for _ in range(n)]
    spelled = mostly(st.sampled_from(FUNCTIONS), st.sampled_from(("linear", " sigmoid ", "linear exact", "", None,
                                                                    "BOGUS")), 10)
    if draw(st.booleans()):
        function = draw(spelled)
        functions = [function] * n
    else:
        functions = [draw(spelled) for _ in range(n)]
        function = functions
    if n == 1:
        return centers[0], window_widths[0], function, centers, window_widths, functions
    return centers, window_widths, function, centers, window_widths, functions


def _check_window(array, args, slope, intercept, invert, bits_stored=None, high_bit=None, signed=None):
    center, width, function, centers, widths, functions = args
    problems = set()
    if any(_normal(f) not in FUNCTIONS for f in functions):
        problems.add(InvalidWindowError)
    elif any(_window_problem(c, w, _normal(f)) for c, w, f in zip(centers, widths, functions)):
        problems.add(InvalidWindowError)
    if not 1 <= len(centers) <= 4:
        problems.add(InvalidWindowError)
    if not (math.isfinite(slope) and math.isfinite(intercept)):
        problems.add(InvalidDatasetError)
    if array.dtype.kind in "iu":
        allocated = array.dtype.itemsize * 8
        bits = allocated if bits_stored is None else bits_stored
        high = bits - 1 if high_bit is None else high_bit
        if not 1 <= bits <= allocated or not bits - 1 <= high < allocated:
            problems.add(InvalidDatasetError)
    try:
        result = dicomrender.window(array, center, width, slope=slope, intercept=intercept, function=function,
                                    invert=invert, bits_stored=bits_stored, high_bit=high_bit, signed=signed)
    except DicomRenderError as exc:
        assert problems, f"refused a valid input: {exc}"
        assert isinstance(exc, tuple(problems)), (exc, problems)
        event(f"refused: {type(exc).__name__}")
        return None
    assert not problems, f"accepted an invalid input, expected {problems}"
    event(f"rendered {len(centers)} window(s)" + (" (empty)" if array.size == 0 else ""))
    k = len(centers)
    assert result.dtype == np.uint8 and result.flags.c_contiguous
    assert result.shape == (array.shape if n_scalar(center) else array.shape + (k,))
    for j, (c, w, f) in enumerate(zip(centers, widths, functions)):
        expected = _reference.render_reference(array, c, w, function=_normal(f), slope=slope, intercept=intercept,
                                               invert=invert, bits_stored=bits_stored, high_bit=high_bit,
                                               signed=signed)
        got = result if n_scalar(center) else result[..., j]
        np.testing.assert_array_equal(got, expected, err_msg=f"channel {j}: c={c!r} w={w!r} f={f!r}")
    return result


def n_scalar(center) -> bool:
    return np.ndim(center) == 0


@PROPERTY
@given(array=pixel_arrays(INTEGER_DTYPES), args=window_arguments(), slope=numbers, intercept=numbers,
       invert=st.booleans(), data=st.data())
def test_window_on_integer_words_equals_the_reference_or_refuses_invalid_input(array, args, slope, intercept, invert,
                                                                               data):
    allocated = array.dtype.itemsize * 8
    bits_stored = data.draw(mostly(st.one_of(st.none(), st.integers(1, allocated)),
                                   st.sampled_from([0, -1, allocated + 1]), 20))
    valid_high = st.integers((bits_stored or allocated) - 1, allocated - 1) if bits_stored is None or \
        1 <= bits_stored <= allocated else st.just(0)
    high_bit = data.draw(mostly(st.one_of(st.none(), valid_high), st.integers(-1, allocated), 20))
    signed = data.draw(st.one_of(st.none(), st.booleans()))
    _check_window(array, args, slope, intercept, invert, bits_stored, high_bit, signed)


@PROPERTY
@given(array=pixel_arrays(FLOAT_DTYPES), args=window_arguments(), slope=numbers, intercept=numbers,
       invert=st.booleans())
def test_window_on_float_pixels_equals_the_reference_or_refuses_invalid_input(array, args, slope, intercept, invert):
    # float pixel data (NaN and inf included) takes the fused float64 loop: same expressions, same order
    _check_window(array, args, slope, intercept, invert)


@PROPERTY
@given(array=pixel_arrays(INTEGER_DTYPES + FLOAT_DTYPES), center=numbers, width=widths,
       function=st.sampled_from(FUNCTIONS), threads=st.integers(1, 4))
def test_output_buffer_and_threads_do_not_change_the_result(array, center, width, function, threads):
    assume(not _window_problem(center, width, function))
    expected = dicomrender.window(array, center, width, function=function, threads=1)
    out = np.full(array.shape, 7, dtype=np.uint8)
    got = dicomrender.window(array, center, width, function=function, threads=threads, out=out)
    assert got is out
    np.testing.assert_array_equal(out, expected)


def test_big_endian_words_render_like_native_ones():
    # found by the fuzzer: byte-swapped integer arrays were reinterpreted as native words
    values = np.array([0, 1, 1000, 4095, 65535], dtype=np.uint16)
    for dtype in (">u2", ">i2"):
        np.testing.assert_array_equal(dicomrender.window(values.astype(dtype), 2048, 4096),
                                      dicomrender.window(values.astype(dtype[1:]), 2048, 4096))
    assert list(dicomrender.window(np.array([1000], ">u2"), 1000, 100)) == [128]  # (1000-999.5)/99+0.5 -> 128.79


@pytest.mark.parametrize("kwargs, error", [
    (dict(center=10 ** 400, width=10), InvalidWindowError),
    (dict(center=10, width=-(10 ** 400)), InvalidWindowError),
    (dict(center="abc", width=10), InvalidWindowError),
    (dict(center=None, width=10), InvalidWindowError),
    (dict(center=1 + 2j, width=10), InvalidWindowError),
    (dict(center=[], width=[]), InvalidWindowError),
    (dict(center=[1, 2], width=[10]), InvalidWindowError),
    (dict(center=[1] * 5, width=[10] * 5), InvalidWindowError),
    (dict(center=np.array([[1.0]]), width=np.array([[5.0]])), InvalidWindowError),
    (dict(center=1, width=10, function="BOGUS"), InvalidWindowError),
    (dict(center=1, width=10, slope="x"), InvalidDatasetError),
    (dict(center=1, width=10, slope=None), InvalidDatasetError),
    (dict(center=1, width=10, intercept=10 ** 400), InvalidDatasetError),
    (dict(center=1, width=10, bits_stored="abc"), InvalidDatasetError),
    (dict(center=1, width=10, high_bit="x"), InvalidDatasetError),
    (dict(center=1, width=10, bits_stored=10 ** 30), InvalidDatasetError),
])
def test_bad_argument_values_raise_dicomrender_errors(kwargs, error):
    with pytest.raises(error) as info:
        dicomrender.window(np.arange(10, dtype=np.uint16), **kwargs)
    assert info.value.attribute  # names what is wrong


@pytest.mark.parametrize("dtype", ["f2", "i8", "u8", "?", "c8", "O", "U3", "M8[s]"])
def test_unsupported_dtypes_raise_the_documented_type_error(dtype):
    with pytest.raises(TypeError, match="window\\(\\) takes"):
        dicomrender.window(np.zeros(3, dtype=dtype), 1, 10)


# ---- LUTs ---------------------------------------------------------------------

@st.composite
def stored_formats(draw):
    allocated = draw(st.sampled_from((8, 16)))
    bits = draw(st.integers(1, allocated))
    high = draw(st.integers(bits - 1, allocated - 1))
    return StoredFormat(allocated, bits, high, draw(st.booleans()))


@st.composite
def luts(draw):
    bits = draw(st.integers(1, 16))
    n = draw(st.integers(1, 300))
    data = draw(hnp.arrays(np.int64, n, elements=st.integers(0, (1 << bits) - 1)))
    first = draw(st.one_of(st.integers(-70000, 70000), st.sampled_from([0, -32768, 32767, 65535])))
    return data, first, bits


@PROPERTY
@given(fmt=stored_formats(), lut=luts(), modality_lut=st.one_of(st.none(), luts()), slope=numbers,
       intercept=numbers, invert=st.booleans(), data=st.data())
def test_voi_and_modality_luts_through_the_kernel_equal_the_reference(fmt, lut, modality_lut, slope, intercept,
                                                                      invert, data):
    words = data.draw(hnp.arrays(fmt.unsigned_dtype, data.draw(shapes), elements=st.integers(0, 255)
                                 if fmt.bits_allocated == 8 else st.integers(0, 65535)))
    try:
        modality = ModalityLut(modality_lut[0], modality_lut[1]) if modality_lut else Rescale(slope, intercept)
    except InvalidDatasetError:
        assert not (math.isfinite(slope) and math.isfinite(intercept))
        return
    voi = VOILut(*lut)
    got = render_stored(words, fmt, modality, [voi], invert=invert)
    # the reference pipeline, step by step
    stored = _reference.stored_values(words, fmt.bits_stored, fmt.high_bit, fmt.signed)
    if modality_lut:
        m = _reference.apply_lut(stored, modality_lut[0], modality_lut[1]).astype(np.float64)
    else:
        m = _reference.modality_values(stored, modality.slope, modality.intercept)
    expected = _reference.to_uint8(_reference.voi_lut_values(m, lut[0], lut[1], lut[2]), invert)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("bits", [0, 17, 32, -1])
def test_voi_lut_bit_depth_outside_1_to_16_is_refused(bits):
    with pytest.raises(InvalidDatasetError) as info:
        VOILut(np.arange(10), 0, bits)
    assert info.value.attribute == "LUTDescriptor"


@pytest.mark.parametrize("data", [[], [[1, 2]], [1.5, 2.5], ["a"]])
def test_lut_data_that_is_not_a_1d_integer_table_is_refused(data):
    with pytest.raises(InvalidDatasetError):
        ModalityLut(np.asarray(data), 0)


@st.composite
def lut_items(draw):
    """A VOI LUT Sequence item as a header states it: descriptor and data that may disagree."""
    n_desc = draw(st.sampled_from([0, 1, 2, 16, 255, 256, 4096]) | st.integers(1, 70))
    bits = draw(mostly(st.sampled_from([8, 10, 12, 16]), st.sampled_from([0, 1, 7, 17]), 4))
    n = 65536 if n_desc == 0 else n_desc
    count = draw(mostly(st.just(n), st.sampled_from([n - 1, n + 1, 0, 2 * n]), 4))
    count = max(0, min(count, 70000))
    top = draw(st.sampled_from([(1 << min(max(bits, 1), 16)) - 1, 65535]))
    entries = draw(hnp.arrays(np.uint16, count, elements=st.integers(0, top)))
    first = draw(st.sampled_from([0, 1, 100, 4000, 32767]))
    return n_desc, first, bits, entries


def _image_dataset(pixels: np.ndarray, **attributes):
    """A minimal native MONOCHROME2 dataset of ``pixels`` (rows, cols)."""
    return make_dataset(pixels, modality="OT", **attributes)


@PROPERTY
@given(item=lut_items(), pixels=hnp.arrays(np.uint16, (4, 5), elements=st.integers(0, 5000)))
def test_voi_lut_items_in_a_header_render_exactly_or_raise_naming_the_lut(item, pixels):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    n_desc, first, bits, entries = item
    lut = Dataset()
    lut.LUTDescriptor = [n_desc, first, bits]
    lut.LUTData = entries.tolist()
    ds = _image_dataset(pixels, VOILUTSequence=Sequence([lut]))
    n = 65536 if n_desc == 0 else n_desc
    valid = 8 <= bits <= 16 and entries.size == n and int(entries.max(initial=0)) < (1 << bits)
    try:
        got = dicomrender.render(ds)
    except DicomRenderError as exc:
        assert not valid, f"refused a valid VOI LUT: {exc}"
        assert isinstance(exc, InvalidDatasetError) and exc.attribute in ("LUTDescriptor", "LUTData"), exc
        event("refused")
        return
    event("rendered")
    assert valid, "rendered an inconsistent VOI LUT"
    expected = _reference.to_uint8(_reference.voi_lut_values(pixels.astype(np.int64), entries.astype(np.int64),
                                                             first, bits))
    np.testing.assert_array_equal(got, expected)


@st.composite
def palettes(draw):
    """Palette Color LUT attributes with parts missing or inconsistent."""
    n_desc = draw(st.sampled_from([0, 4, 16, 256]))
    n = 65536 if n_desc == 0 else n_desc
    bits = draw(mostly(st.sampled_from([8, 16]), st.just(12), 10))
    usually = mostly(st.just(True), st.just(False), 20)  # each part present and consistent 95 % of the time
    attributes = {}
    tables = {}
    for colour in ("Red", "Green", "Blue"):
        if draw(usually):
            desc_bits = bits if draw(usually) else draw(st.sampled_from([8, 16, 1]))
            attributes[f"{colour}PaletteColorLookupTableDescriptor"] = [n_desc, 0, desc_bits]
        if draw(usually):
            count = n if draw(usually) else draw(st.sampled_from([0, n - 1, n + 1]))
            count = min(count, 300)
            table = draw(hnp.arrays(np.uint16, count, elements=st.integers(0, 255 if bits == 8 else 65535)))
            tables[colour] = table
            attributes[f"{colour}PaletteColorLookupTableData"] = (table.astype("<u2").tobytes() if bits != 8
                                                                  else table.astype(np.uint8).tobytes())
    return n, bits, attributes, tables


@PROPERTY
@given(palette=palettes(), pixels=hnp.arrays(np.uint8, (3, 4), elements=st.integers(0, 255)))
def test_palettes_with_missing_parts_render_exactly_or_raise_dicomrender_errors(palette, pixels):
    n, bits, attributes, tables = palette
    ds = _image_dataset(pixels, PhotometricInterpretation="PALETTE COLOR")
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
        if keyword.endswith("Data"):
            ds[keyword].VR = "OW"
    complete = len(attributes) == 6 and len({tuple(v) for k, v in attributes.items() if k.endswith("Descriptor")}) == 1
    consistent = complete and bits in (8, 16) and all(t.size == n for t in tables.values())
    try:
        rgb = dicomrender.render(ds)
    except DicomRenderError as exc:
        assert not consistent, f"refused a consistent palette: {exc}"
        assert isinstance(exc, (InvalidDatasetError, UnsupportedImageError, PixelDataError)), exc
        event("refused")
        return
    event("rendered")
    assert consistent, "rendered an incomplete or inconsistent palette"
    assert rgb.shape == (3, 4, 3) and rgb.dtype == np.uint8
    index = np.clip(pixels.astype(np.int64), 0, n - 1)
    for j, colour in enumerate(("Red", "Green", "Blue")):
        table = tables[colour].astype(np.int64)
        expected = table[index] if bits == 8 else table[index] >> 8
        np.testing.assert_array_equal(rgb[..., j], expected.astype(np.uint8), err_msg=colour)


# ---- the kernel's own argument checks --------------------------------------------

@PROPERTY
@given(dtype=st.sampled_from([np.uint8, np.uint16, np.uint32]), n=st.integers(0, 70),
       k=st.integers(0, 5), table_bits=st.integers(0, 16), shift=st.integers(-2, 33),
       mask=st.sampled_from([0, 1, 255, 4095, 65535, 65536, 0xFFFFFFFF]), out_delta=st.sampled_from([0, 0, -1, 1]),
       data=st.data())
def test_kernel_gather_either_refuses_or_equals_numpy(dtype, n, k, table_bits, shift, mask, out_delta, data):
    src = data.draw(hnp.arrays(dtype, n))
    tables = data.draw(hnp.arrays(np.uint8, (k, 1 << table_bits)))
    out = np.zeros(max(0, n * k + out_delta), dtype=np.uint8)
    itemsize_bits = np.dtype(dtype).itemsize * 8
    valid = 1 <= k <= _kernel.MAX_WINDOWS and mask < (1 << table_bits) and 0 <= shift < itemsize_bits \
        and out_delta == 0
    try:
        _kernel.gather(src, tables, out, shift, mask, 2)
    except (ValueError, TypeError):
        assert not valid
        return
    assert valid or n == 0  # nothing to read or write when there are no pixels
    if n:
        index = (src.astype(np.uint64) >> np.uint64(shift)) & np.uint64(mask)
        np.testing.assert_array_equal(out.reshape(n, k), tables[:, index.astype(np.int64)].T)


@pytest.mark.parametrize("code", [3.0, -1.0, 0.5, math.nan, math.inf, 1e10, -1e300])
def test_kernel_arithmetic_refuses_function_codes_it_cannot_represent(code):
    # found under UBSan: NaN and 1e10 were cast to int before the range check
    params = np.array([[1.0, 0.0, 40.0, 80.0, code, 0.0]])
    with pytest.raises(ValueError, match="unknown function code"):
        _kernel.arithmetic(np.zeros(4, np.float32), params, np.zeros(4, np.uint8))


@pytest.mark.parametrize("code", [0.0, 1.0, 2.0])
def test_kernel_arithmetic_accepts_the_three_function_codes(code):
    params = np.array([[1.0, 0.0, 40.0, 80.0, code, 0.0]])
    out = np.zeros(3, np.uint8)
    _kernel.arithmetic(np.array([0.0, 40.0, 100.0], np.float32), params, out)
    function = FUNCTIONS[int(code)]
    np.testing.assert_array_equal(out, _reference.render_reference(np.array([0.0, 40.0, 100.0]), 40.0, 80.0,
                                                                   function=function))


@pytest.mark.parametrize("a, b, bits, signed", [(math.inf, 0.0, 16, False), (-math.inf, 0.0, 12, True),
                                                (65536.0, 0.0, 16, False), (1.0, 2.0 ** 31, 8, False)])
def test_kernel_affine_refuses_parameters_that_overflow_the_integer_conversion(a, b, bits, signed):
    # found under UBSan: float32(d) * a + b was converted to int32 out of range
    with pytest.raises(ValueError):
        _kernel.affine(np.arange(16, dtype=np.uint16), np.array([[a, b, 0.0]]), np.zeros(16, np.uint8), 0, bits,
                       signed)


def test_kernel_affine_accepts_the_largest_safe_slope():
    out = np.zeros(3, np.uint8)
    _kernel.affine(np.array([0, 1, 65535], np.uint16), np.array([[32768.0, 0.0, 0.0]]), out, 0, 16, False)
    assert list(out) == [0, 255, 255]
