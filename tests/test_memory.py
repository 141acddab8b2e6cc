"""Time and peak memory of rendering (issue 13, cases 6 and 7) and the ``max_memory`` budget.

Each case renders a file generated here (large ones in ``tmp_path``, never stored) in a child process
under a memory cap (:func:`tests.hostile.run_capped`), and must finish within 2 s with a peak below 8x
the output plus 100 MB; the child saves its image after the measurement, and the parent compares it
with an independent computation of today's result (numpy's percentile, the reference pipeline, the
PS3.3 colour formulas applied to the whole array at once).  The measured peak must also stay within
what ``max_memory`` is checked against (``ImageInfo.memory_needed``) plus the data set itself.
"""

from __future__ import annotations

import inspect
import os

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import RLELossless

import dicomrender
from dicomrender import _reference
from dicomrender.dicom import color as colour
from dicomrender.dicom.header import DEFAULT_MAX_MEMORY, ImageInfo
from dicomrender.errors import InvalidArgumentError, PixelLimitError

from .hostile import MB, run_capped
from .synthetic import colour_dataset, make_dataset, write_dataset

# The driver's peak is ru_maxrss, which a child started by vfork inherits from the parent's peak: the
# body measures its own (Linux: reset the high-water mark, then read it), saved with the image.
_BODY = """
import atexit
def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status("VmRSS:")
value = dicomrender.render(PATH, *ARGS, **OPTIONS)
peak = status("VmHWM:") - base
atexit.register(np.save, OUT, value)  # after the measurement
atexit.register(lambda: open(OUT + ".peak", "w").write(str(peak)))
return value
"""


def _run(tmp_path, ds: Dataset, *args, **options):
    """Render ``ds`` (written to a file) in a capped child: ``(CappedResult, image)``."""
    path = write_dataset(ds, tmp_path / "case.dcm")
    del ds
    out = str(tmp_path / "image.npy")
    result = run_capped(_BODY, PATH=path, ARGS=list(args), OPTIONS=options, OUT=out)
    assert result.outcome == "ok", (result.error, result.message, result.detail)
    image = np.load(out)
    with open(out + ".peak") as f:
        result.peak_bytes = max(result.peak_bytes, int(f.read()))
    ratio = result.peak_bytes / max(result.output_bytes, 1)
    print(f"{result.output_bytes / MB:.1f} MB out, peak {result.peak_bytes / MB:.1f} MB ({ratio:.1f}x), "
          f"{result.seconds:.2f} s")
    # the budget's estimate bounds what the render held beyond the data set: the file's bytes, and up to
    # as much again for the values pydicom decoded from them (5,000 LUT items)
    info = ImageInfo.from_dataset(pydicom.dcmread(path))
    frames = info.frames if "frame" not in options else 1
    estimate = sum(info.memory_needed(frames, image.size // (frames * info.rows * info.columns)))
    assert result.peak_bytes <= estimate + 2 * os.path.getsize(path) + 32 * MB, (result.peak_bytes, estimate)
    return result, image


def _check(result, image, expected):
    np.testing.assert_array_equal(image, expected)
    assert result.within(), (f"{result.seconds:.2f} s, peak {result.peak_bytes / MB:.1f} MB for "
                             f"{result.output_bytes / MB:.1f} MB of output")


def _window(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """The reference rendering of the window dcmtk builds from the range ``low..high``."""
    return _reference.to_uint8(_reference.voi_values(values, (low + high + 1) / 2, high - low + 1))


# ---- data-driven windows on 32-bit and float data --------------------------------------------------------

_FRAMES, _SIZE = 16, 1024


def _int32(rng) -> np.ndarray:
    return rng.integers(-(1 << 30), 1 << 30, size=(_FRAMES, _SIZE, _SIZE), dtype=np.int32)


def _float32(rng) -> np.ndarray:
    return (rng.standard_normal((_FRAMES, _SIZE, _SIZE)) * 1000).astype(np.float32)


def _float_dataset(values: np.ndarray) -> Dataset:
    ds = make_dataset(values.view(np.uint32), modality="OT")
    del ds.PixelData, ds.PixelRepresentation, ds.BitsStored, ds.HighBit
    ds.FloatPixelData = values.astype("<f4").tobytes()
    return ds


def _histogram_range(values: np.ndarray, percent: float) -> tuple:
    """dcmtk's histogram window walk (see presets.windows.histogram_window), by sorting."""
    ints = np.sort(np.trunc(values).astype(np.int64).reshape(-1))
    low, high = int(ints[0]), int(ints[-1])
    n, threshold = high - low + 1, int(percent / 100.0 * ints.size)
    start = min(int(ints[threshold - 1]) - low + 1, n)
    stop = max(int(ints[::-1][threshold - 1]) - low, 0)
    return (low + start if start < n else 0), (low + stop if stop > 0 else 0)


@pytest.mark.parametrize("kind", ["int32", "float32"])
@pytest.mark.parametrize("preset", ["header", "minmax", "percentile", "histogram"])
def test_data_driven_window_on_wide_data_streams(tmp_path, kind, preset):
    rng = np.random.default_rng(7)
    pixels = _int32(rng) if kind == "int32" else _float32(rng)
    ds = make_dataset(pixels, modality="OT") if kind == "int32" else _float_dataset(pixels)
    result, image = _run(tmp_path, ds, preset)
    values = pixels.astype(np.float64)
    if preset in ("header", "minmax"):
        low, high = values.min(), values.max()
    elif preset == "percentile":
        low, high = np.percentile(values, (1, 99))
    else:
        low, high = _histogram_range(values, 5.0)
    _check(result, image, _window(values, float(low), float(high)))


def test_percentile_on_16_bit_data_counts_values(tmp_path):
    rng = np.random.default_rng(3)
    stored = rng.integers(0, 4096, size=(_FRAMES, _SIZE, _SIZE), dtype=np.uint16)
    ds = make_dataset(stored, bits_stored=12, RescaleSlope=-0.5, RescaleIntercept=100, modality="OT")
    result, image = _run(tmp_path, ds, "percentile", percentiles=[2.5, 97.5])
    values = stored * -0.5 + 100
    low, high = np.percentile(values, (2.5, 97.5))
    _check(result, image, _window(values, float(low), float(high)))


def test_voi_lut_on_32_bit_data_renders_by_blocks(tmp_path):
    # a VOI LUT over wide data has no table or kernel path: the reference pipeline, block by block
    rng = np.random.default_rng(5)
    stored = rng.integers(-3000, 70000, size=(8, _SIZE, _SIZE), dtype=np.int32)
    ds = make_dataset(stored, modality="OT")
    lut = (np.arange(4096) * 16 + 15).astype(np.uint16)
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    item.LUTData = lut.tobytes()
    ds.VOILUTSequence = Sequence([item])
    result, image = _run(tmp_path, ds)
    expected = _reference.to_uint8(_reference.voi_lut_values(stored.astype(np.float64), lut, 0, 16))
    _check(result, image, expected)


# ---- colour ---------------------------------------------------------------------------------------------


def _rgb(frames: int = _FRAMES, size: int = _SIZE, dtype=np.uint8) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    top = np.iinfo(dtype).max
    samples = np.empty((frames, size, size, 3), dtype)
    for f in range(frames):
        samples[f, ..., 0] = (x * 67 + f * 1031) & top
        samples[f, ..., 1] = (y * 131 + x * 7) & top
        samples[f, ..., 2] = ((x // 7) * 257 + (y // 5) * 263 + f) & top
    return samples


@pytest.mark.parametrize("planar", [0, 1])
def test_rgb_converts_block_by_block(tmp_path, planar):
    samples = _rgb()
    result, image = _run(tmp_path, colour_dataset(samples, "RGB", planar))
    _check(result, image, samples)


def test_rgb_16_bit(tmp_path):
    samples = _rgb(8, dtype=np.uint16)
    result, image = _run(tmp_path, colour_dataset(samples, "RGB"))
    _check(result, image, (samples >> 8).astype(np.uint8))


@pytest.mark.parametrize("photometric", ["YBR_FULL", "YBR_RCT"])
def test_ybr_converts_block_by_block(tmp_path, photometric):
    samples = _rgb()
    result, image = _run(tmp_path, colour_dataset(samples, photometric))
    convert = colour.ybr_full_to_rgb if photometric == "YBR_FULL" else colour.ybr_rct_to_rgb
    _check(result, image, colour.to_8bit(convert(samples, 8), 8))  # today's formula, on the whole array


def test_ybr_full_422_native(tmp_path):
    samples = _rgb(8)
    ybr = samples.copy()
    ybr[..., 2:, 1:] = ybr[..., :-2, 1:]  # any chroma: each pair of pixels shares the first's
    ybr[:, :, 1::2, 1:] = ybr[:, :, 0::2, 1:]
    ds = colour_dataset(samples, "YBR_FULL_422")
    stream = np.empty((8, _SIZE, _SIZE // 2, 4), np.uint8)
    stream[..., 0], stream[..., 1] = ybr[:, :, 0::2, 0], ybr[:, :, 1::2, 0]
    stream[..., 2], stream[..., 3] = ybr[:, :, 0::2, 1], ybr[:, :, 0::2, 2]
    ds.PixelData = stream.tobytes()
    result, image = _run(tmp_path, ds)
    _check(result, image, colour.to_8bit(colour.ybr_full_to_rgb(ybr, 8), 8))


def test_palette_colour_converts_block_by_block(tmp_path):
    rng = np.random.default_rng(11)
    indices = rng.integers(0, 256, size=(_FRAMES, _SIZE, _SIZE), dtype=np.uint8)
    tables = rng.integers(0, 65536, size=(3, 256)).astype(np.uint16)
    ds = make_dataset(indices, photometric="PALETTE COLOR", modality="US")
    for name, table in zip(("Red", "Green", "Blue"), tables):
        setattr(ds, f"{name}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(ds, f"{name}PaletteColorLookupTableData", table.astype("<u2").tobytes())
    result, image = _run(tmp_path, ds)
    _check(result, image, np.stack([(tables[c] >> 8)[indices] for c in range(3)], axis=-1).astype(np.uint8))


def test_rle_rgb_decodes_frame_by_frame(tmp_path):
    samples = _rgb(60, 512)
    ds = colour_dataset(samples, "RGB")
    ds.compress(RLELossless, encoding_plugin="pylibjpeg")
    result, image = _run(tmp_path, ds)
    _check(result, image, samples)


def test_rle_grayscale_decodes_into_one_array(tmp_path):
    y, x = np.mgrid[0:_SIZE, 0:_SIZE]
    stored = np.stack([((x * 3 + y * 5 + f * 7) & 4095) for f in range(24)]).astype(np.uint16)
    ds = make_dataset(stored, bits_stored=12, modality="OT")
    ds.compress(RLELossless, encoding_plugin="pylibjpeg")
    result, image = _run(tmp_path, ds, window=[2048, 4096])
    _check(result, image, _reference.render_reference(stored, 2048, 4096, bits_stored=12))


# ---- many frames, many LUTs -----------------------------------------------------------------------------


def test_a_million_one_pixel_frames(tmp_path):
    stored = (np.arange(1_000_000) % 251).astype(np.uint8).reshape(-1, 1, 1)
    result, image = _run(tmp_path, make_dataset(stored, modality="OT"))
    _check(result, image, _window(stored.astype(np.float64), 0.0, 250.0))


def _voi_lut_item(table: np.ndarray, explanation: str = "") -> Dataset:
    item = Dataset()
    item.LUTDescriptor = [len(table) % 65536, 0, 16]
    item.LUTData = table.astype("<u2").tobytes()
    if explanation:
        item.LUTExplanation = explanation
    return item


def _lut_expected(stored: np.ndarray, table: np.ndarray) -> np.ndarray:
    return _reference.to_uint8(_reference.voi_lut_values(stored.astype(np.float64), table, 0, 16))


def test_one_voi_lut_is_parsed_once_for_20000_frames(tmp_path):
    stored = (np.arange(20_000) * 3).astype(np.uint16).reshape(-1, 1, 1)
    table = (65535 - np.arange(65536)).astype(np.uint16)
    ds = make_dataset(stored, modality="OT")
    ds.VOILUTSequence = Sequence([_voi_lut_item(table)])
    result, image = _run(tmp_path, ds)
    _check(result, image, _lut_expected(stored, table))


def test_per_frame_groups_share_one_parsed_voi_lut(tmp_path):
    stored = (np.arange(5_000) * 7).astype(np.uint16).reshape(-1, 1, 1)
    table = (np.arange(65536) // 3).astype(np.uint16)
    ds = make_dataset(stored, modality="OT")
    ds.VOILUTSequence = Sequence([_voi_lut_item(table)])
    groups = []
    for _ in range(len(stored)):
        transform = Dataset()
        transform.RescaleSlope, transform.RescaleIntercept = 1, 0
        group = Dataset()
        group.PixelValueTransformationSequence = Sequence([transform])
        groups.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(groups)
    result, image = _run(tmp_path, ds)
    _check(result, image, _lut_expected(stored, table))


@pytest.mark.parametrize("voi_index", [0, 4999])
def test_5000_voi_lut_items_only_the_chosen_one_is_parsed(tmp_path, voi_index):
    stored = (np.arange(200 * 64) % 4096).astype(np.uint16).reshape(200, 8, 8)
    tables = [(np.arange(4096) * (1 + i % 15)).astype(np.uint16) for i in range(5_000)]
    ds = make_dataset(stored, bits_stored=12, modality="OT")
    ds.VOILUTSequence = Sequence([_voi_lut_item(t, f"LUT {i}") for i, t in enumerate(tables)])
    result, image = _run(tmp_path, ds, voi_index=voi_index)
    _check(result, image, _lut_expected(stored, tables[voi_index]))


# ---- max_memory -----------------------------------------------------------------------------------------


def test_max_memory_is_documented_and_checked():
    assert inspect.signature(dicomrender.render).parameters["max_memory"].default == DEFAULT_MAX_MEMORY == 4 << 30
    assert inspect.signature(dicomrender.convert).parameters["max_memory"].default == DEFAULT_MAX_MEMORY
    doc = " ".join(dicomrender.render.__doc__.split())
    assert "max_memory : int, optional" in doc and "Default ``4 * 2**30`` (4 GiB)" in doc
    ds = make_dataset(np.zeros((4, 4), np.uint16))
    with pytest.raises(InvalidArgumentError, match="max_memory must be >= 1") as info:
        dicomrender.render(ds, max_memory=0)
    assert info.value.attribute == "max_memory"
    with pytest.raises(TypeError, match="max_memory"):
        dicomrender.render(ds, max_memory=1e9)
    with pytest.raises(TypeError, match="max_memory"):
        dicomrender.convert([], "unused", max_memory="1G")


def _compressed(tmp_path) -> str:
    """24 frames of 1024x1024 12-bit RLE: 48 MB decoded, 24 MB of output, 0.3 MB of file."""
    stored = np.broadcast_to((np.arange(1024, dtype=np.uint16) * 4)[None, None, :], (24, 1024, 1024))
    ds = make_dataset(np.ascontiguousarray(stored), bits_stored=12, modality="OT")
    ds.compress(RLELossless, encoding_plugin="pylibjpeg")
    return write_dataset(ds, tmp_path / "rle.dcm")


def test_max_memory_refuses_before_anything_is_decoded(tmp_path):
    path = _compressed(tmp_path)
    info = ImageInfo.from_dataset(pydicom.dcmread(path))
    output, decoded, working = info.memory_needed(24, 1)
    assert (output, decoded) == (24 << 20, 25 * (2 << 20)) and working == 64 << 20
    needed = output + decoded + working
    result = run_capped("return dicomrender.render(PATH, max_memory=BUDGET)", PATH=path, BUDGET=needed - 1)
    assert result.outcome == "error" and result.error == "PixelLimitError", result
    assert result.attribute == "max_memory" and f"max_memory={needed - 1}" in result.message
    assert f"needs about {needed} bytes" in result.message
    # refused before decoding: the peak is the file read into memory, nothing of the output or the frames
    assert result.peak_bytes < os.path.getsize(path) + 16 * MB and result.seconds < 2
    result = run_capped("return dicomrender.render(PATH, max_memory=BUDGET)", PATH=path, BUDGET=needed)
    assert result.outcome == "ok" and result.output_bytes == output and result.peak_bytes < needed


def test_max_memory_counts_every_output_channel():
    # one channel fits, three do not: refused before the output is allocated
    ds = make_dataset(np.zeros((1024, 1024), np.uint16), bits_stored=12, modality="CT")
    one = sum(ImageInfo.from_dataset(ds).memory_needed(1, 1))
    assert dicomrender.render(ds, ["brain", "lung", "bone"], max_memory=one + 3 * MB).shape == (1024, 1024, 3)
    with pytest.raises(PixelLimitError, match="to 3 channel") as info:
        dicomrender.render(ds, ["brain", "lung", "bone"], max_memory=one)
    assert info.value.attribute == "max_memory"
    assert dicomrender.render(ds, "brain", max_memory=one).shape == (1024, 1024)


def test_max_memory_is_passed_to_every_file_of_convert(tmp_path):
    write_dataset(make_dataset(np.zeros((256, 256), np.uint16), bits_stored=12), tmp_path / "a.dcm")
    report = dicomrender.convert([str(tmp_path / "a.dcm")], str(tmp_path / "out"), jobs=1, max_memory=MB)
    assert [(r.status, r.error) for r in report] == [("failed", "PixelLimitError")]
    assert "max_memory=1048576" in report[0].message
    report = dicomrender.convert([str(tmp_path / "a.dcm")], str(tmp_path / "out"), jobs=1, max_memory=None)
    assert [r.status for r in report] == ["ok"]
