"""Issue 13, API cases: every bad call gives a DicomRenderError subclass (TypeError for a misspelled
keyword, as Python does) or a correct image.

- 15: misspelled or unused keyword options raise TypeError; presets declare the options they read;
- 16: ``out=`` over the input renders the right pixels on every path and thread count;
- 17 (API): ``save`` refuses quality / compress_level out of range and results no JPEG or PNG holds;
- 18: non-seekable streams, and ``threads`` values and types;
- 19b: data-driven windows ignore +-inf pixels of float data.
"""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest

import dicomrender
from dicomrender import _reference, errors
from dicomrender._types import Rescale, StoredFormat, Window
from dicomrender.dicom import source
from dicomrender.engine import Path, render_stored
from dicomrender.engine.compile import compile_tables
from dicomrender.errors import InvalidArgumentError, NotDicomError, PluginError
from dicomrender.presets import get_preset

from .data import data_file
from .synthetic import make_dataset, write_dataset

# ---- 15: keyword options -----------------------------------------------------------------------------


@pytest.mark.parametrize("options,wrong,closest", [
    (dict(windw=(40, 80)), "windw", "window"),
    (dict(voi_indx=1), "voi_indx", "voi_index"),
    (dict(preset="percentile", percentile=(2, 98)), "percentile", "percentiles"),
    (dict(preset="histogram", histogram_percnt=3), "histogram_percnt", "histogram_percent"),
    (dict(colour_windw=True), "colour_windw", "colour_window"),
    (dict(treads=2), "treads", "threads"),
])
def test_misspelled_keyword_names_it_and_the_closest(ct_dataset, options, wrong, closest):
    with pytest.raises(TypeError, match=rf"render\(\) got an unexpected keyword argument '{wrong}'; "
                                        rf"did you mean '{closest}'\?"):
        dicomrender.render(ct_dataset, **options)


@pytest.mark.parametrize("options", [
    dict(preset="brain", voi_index=1),            # a fixed window reads no option
    dict(window=(40, 80), voi_index=1),           # window= uses no preset at all
    dict(preset="auto", percentiles=(1, 99)),     # another preset's option
    dict(preset="ich_rgb", histogram_percent=5),  # a stack reads what its presets read: nothing
    dict(preset=["header", Window(40, 80)], percentiles=(1, 99)),
])
def test_option_no_preset_in_use_reads_is_refused(ct_dataset, options):
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        dicomrender.render(ct_dataset, **options)


def test_declared_options_are_accepted(ct_dataset):
    header = dicomrender.render(ct_dataset)
    np.testing.assert_array_equal(dicomrender.render(ct_dataset, voi_index=0), header)
    np.testing.assert_array_equal(dicomrender.render(ct_dataset, "header", voi_explanation=None), header)
    dicomrender.render(ct_dataset, "percentile", percentiles=(5, 95))
    dicomrender.render(ct_dataset, "histogram", histogram_percent=1)
    dicomrender.render(ct_dataset, ["header", "percentile", "histogram"], voi_index=0, percentiles=(2, 98),
                       histogram_percent=3)
    dicomrender.render(ct_dataset, "percentile,brain", percentiles=(5, 95))
    dicomrender.render(ct_dataset, "brain", colour_window=True)  # the renderer's own option


def test_built_in_presets_declare_their_options():
    declared = {p.name: p.options for p in dicomrender.list_presets() if p.source == "dicomrender"}
    assert declared["header"] == ("voi_index", "voi_explanation", "voi")
    assert declared["percentile"] == ("percentiles",)
    assert declared["histogram"] == ("histogram_percent",)
    assert declared["auto"] == declared["minmax"] == declared["brain"] == declared["ich_rgb"] == ()


def test_a_preset_without_declared_options_reads_any():
    """Third-party compute functions written before ``options`` existed keep working (None: unchecked)."""
    ds = make_dataset(np.arange(64, dtype=np.uint16).reshape(8, 8), modality="OT")
    legacy = dicomrender.Preset("legacy", compute=lambda ctx: Window(ctx.options.get("centre", 32), 16))
    assert legacy.options is None
    np.testing.assert_array_equal(dicomrender.render(ds, legacy, centre=20), dicomrender.render(ds, window=(20, 16)))
    declared = dicomrender.Preset("declared", compute=lambda ctx: Window(ctx.options.get("centre", 32), 16),
                                  options=("centre",))
    np.testing.assert_array_equal(dicomrender.render(ds, declared, centre=20), dicomrender.render(ds, window=(20, 16)))
    with pytest.raises(TypeError, match="'center'; did you mean 'centre'"):
        dicomrender.render(ds, declared, center=20)


def test_preset_options_must_be_keyword_names():
    with pytest.raises(PluginError, match="option"):
        dicomrender.Preset("bad", compute=lambda ctx: Window(0, 1), options=("not a name",))
    assert dicomrender.Preset("fixed", center=1, width=2).options == ()
    assert dicomrender.Preset("one", compute=lambda ctx: Window(0, 1), options="level").options == ("level",)


def test_mr_plugin_declares_its_options():
    try:
        mr, pet = get_preset("mr"), get_preset("pet_suv")
    except errors.UnknownPresetError:
        pytest.skip("the example plugin dicomrender-presets-mr is not installed")
    assert mr.options == ("foreground_percentiles",) and pet.options == ("suv_max",)
    path = data_file("MR_small.dcm")
    dicomrender.render(path, "mr", foreground_percentiles=(10, 90))
    with pytest.raises(TypeError, match="did you mean 'foreground_percentiles'"):
        dicomrender.render(path, "mr", foreground_percentile=(10, 90))


def test_save_checks_keywords_too(tmp_path, ct_dataset):
    with pytest.raises(TypeError, match=r"save\(\) got an unexpected keyword argument 'qualty'; did you mean "
                                        r"'quality'"):
        dicomrender.save(ct_dataset, tmp_path / "x.jpg", qualty=80)
    with pytest.raises(TypeError, match="'voi_indx'; did you mean 'voi_index'"):
        dicomrender.save(ct_dataset, tmp_path / "x.jpg", voi_indx=1)
    dicomrender.save(ct_dataset, tmp_path / "x.jpg", voi_index=0, window=None)
    assert [p.name for p in tmp_path.iterdir()] == ["x.jpg"]


# ---- 16: out= over the input ----------------------------------------------------------------------------

N = 1 << 19  # two threads really split this many pixels


def _aliased(offset: int, dtype, k: int = 1):
    """Words of ``dtype`` and a uint8 ``out`` for them that starts ``offset`` bytes into the same buffer."""
    itemsize = np.dtype(dtype).itemsize
    buffer = np.zeros(N * itemsize + N * k + 64, dtype=np.uint8)
    words = buffer[:N * itemsize].view(dtype)
    out = buffer[offset:offset + N * k]
    return words, (out if k == 1 else out.reshape(N, k))


@pytest.mark.parametrize("offset", [0, N // 2, N * 2 - 8])
def test_out_over_the_integer_input_on_every_path(offset):
    fmt = StoredFormat(16, 12, 11, False)
    modality = Rescale(1.0, -1024.0)
    rng = np.random.default_rng(offset)
    covered = set()
    for vois in ([Window(40, 80)], [Window(400, 1800)], [Window(40, 80), Window(400, 1800), Window(-600, 1500)]):
        compiled = compile_tables(fmt, modality, vois, False)
        paths = [Path.AUTO, Path.TABLE, Path.LUT, Path.ARITHMETIC, Path.REFERENCE]
        paths += [Path.AFFINE] if compiled.affine is not None else []
        paths += [Path.NARROW] if compiled.narrow is not None else []
        for path in paths:
            for threads in (1, 2):
                words, out = _aliased(offset, np.uint16, len(vois))
                words[:] = rng.integers(0, 1 << 12, N, dtype=np.uint16)
                expected = np.stack([_reference.render_reference(words.copy(), v.center, v.width, slope=1.0,
                                                                 intercept=-1024.0, bits_stored=12)
                                     for v in vois], axis=-1).reshape(out.shape)
                got = render_stored(words, fmt, modality, vois, out=out, path=path, threads=threads)
                assert got is out
                assert np.count_nonzero(out != expected) == 0, (path, threads, len(vois))
                covered.add(path)
    assert covered == set(Path)


@pytest.mark.parametrize("offset", [0, N, N * 4 - 8])
def test_out_over_float_input(offset):
    for path in (Path.AUTO, Path.ARITHMETIC, Path.REFERENCE):
        for threads in (1, 2):
            words, out = _aliased(offset, np.float32)
            words[:] = np.random.default_rng(1).normal(0, 500, N)
            expected = _reference.render_reference(words.copy(), 40.0, 400.0)
            render_stored(words, None, Rescale(1.0, 0.0), [Window(40, 400)], out=out, path=path, threads=threads)
            # float data may differ from the reference by one level (PIPELINE.md section 5); aliasing would not
            assert np.abs(out.astype(int) - expected).max() <= 1, (path, threads)


@pytest.mark.parametrize("offset", [0, N // 2])
def test_window_out_over_its_input(offset):
    for threads in (1, 2):
        words, out = _aliased(offset, np.uint16)
        words[:] = np.random.default_rng(2).integers(0, 1 << 12, N, dtype=np.uint16)
        expected = _reference.render_reference(words.copy(), 1000.0, 2000.0, bits_stored=12)
        assert dicomrender.window(words, 1000, 2000, bits_stored=12, out=out, threads=threads) is out
        np.testing.assert_array_equal(out, expected)


def test_render_out_over_the_pixel_data_of_a_dataset():
    """A Dataset whose Pixel Data is a writable buffer, and an ``out`` over that buffer."""
    frames = np.random.default_rng(3).integers(0, 4096, (4, 256, 256), dtype=np.uint16)
    ds = make_dataset(frames, bits_stored=12)
    expected = dicomrender.render(ds, window=(1000, 2000), threads=2)
    buffer = bytearray(ds.PixelData)
    ds.PixelData = memoryview(buffer)
    out = np.frombuffer(buffer, dtype=np.uint8)[:frames.size].reshape(frames.shape)
    assert dicomrender.render(ds, window=(1000, 2000), out=out, threads=2) is out
    np.testing.assert_array_equal(out, expected)


# ---- 17 (API): save ------------------------------------------------------------------------------------


@pytest.mark.parametrize("keyword,value", [("quality", 1000), ("quality", -5), ("quality", 0), ("quality", 101),
                                           ("compress_level", 10), ("compress_level", -1)])
def test_save_refuses_encoder_settings_out_of_range(tmp_path, ct_dataset, keyword, value):
    with pytest.raises(InvalidArgumentError, match=f"{keyword} must be from") as caught:
        dicomrender.save(ct_dataset, tmp_path / "x.jpg", **{keyword: value})
    assert caught.value.attribute == keyword and isinstance(caught.value, ValueError)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("value", [95.0, True, "95"])
def test_save_refuses_quality_of_the_wrong_type(tmp_path, ct_dataset, value):
    with pytest.raises(TypeError, match="quality must be an integer"):
        dicomrender.save(ct_dataset, tmp_path / "x.jpg", quality=value)


def test_save_says_two_channels_do_not_fit_an_image_file(tmp_path, ct_dataset):
    with pytest.raises(InvalidArgumentError, match=r"cannot write \(64, 64, 2\) to JPEG: a JPEG or PNG file holds "
                                                   r"1 \(grey\) or 3 \(RGB\) channels, not 2"):
        dicomrender.save(ct_dataset, tmp_path / "x.jpg", "brain,lung")
    with pytest.raises(InvalidArgumentError, match="not 4"):
        dicomrender.save(ct_dataset, tmp_path / "x.png", ["brain", "lung", "bone", "liver"])
    assert not list(tmp_path.iterdir())
    dicomrender.save(ct_dataset, tmp_path / "x.png", "brain,lung,bone")  # RGB


def test_save_refuses_multi_frame_results_whatever_their_shape(tmp_path):
    # 5 frames of 8x3: (5, 8, 3) looks like one RGB frame
    source = write_dataset(make_dataset(np.arange(120, dtype=np.uint16).reshape(5, 8, 3)), tmp_path / "mf.dcm")
    with pytest.raises(InvalidArgumentError, match="multi-frame image renders to \\(5, 8, 3\\); pass frame=") as caught:
        dicomrender.save(source, tmp_path / "x.png")
    assert caught.value.attribute == "frame" and caught.value.filename == source
    dicomrender.save(source, tmp_path / "x.png", frame=4)


# ---- 18: streams and threads -------------------------------------------------------------------------


class _Pipe(io.RawIOBase):
    """A stream that only reads forward (a pipe, a socket, a decompressor)."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, buffer):
        chunk = self._data.read(min(len(buffer), 1000))  # short reads, as pipes give
        buffer[:len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize("preamble", [True, False])
@pytest.mark.parametrize("buffered", [True, False])
def test_non_seekable_stream_renders(preamble, buffered):
    path = data_file("CT_small.dcm")
    data = open(path, "rb").read()
    if not preamble:
        data = data[132:]
    stream = _Pipe(data)
    assert not stream.seekable()
    got = dicomrender.render(io.BufferedReader(stream) if buffered else stream, "brain")
    np.testing.assert_array_equal(got, dicomrender.render(path, "brain"))


def test_non_seekable_junk_and_oversized_streams_are_not_dicom(monkeypatch):
    with pytest.raises(NotDicomError):
        dicomrender.render(_Pipe(b"\x08\x00" + b"junk" * 100))
    with pytest.raises(NotDicomError, match="binary stream"):
        dicomrender.render(io.TextIOWrapper(io.BufferedReader(_Pipe(b"text, not bytes"))))
    monkeypatch.setattr(source, "_STREAM_READ_LIMIT", 4096)
    with pytest.raises(NotDicomError, match="up to 4096 bytes"):
        dicomrender.render(_Pipe(open(data_file("CT_small.dcm"), "rb").read()))


@pytest.mark.parametrize("threads", [2**40, 0, -1, 10**6])
def test_threads_out_of_range(ct_dataset, threads):
    for call in (lambda: dicomrender.render(ct_dataset, threads=threads),
                 lambda: dicomrender.window(np.zeros(10, np.uint16), 40, 80, threads=threads),
                 lambda: dicomrender.set_threads(threads)):
        with pytest.raises(InvalidArgumentError, match="threads must be from 1 to") as caught:
            call()
        assert caught.value.attribute == "threads" and isinstance(caught.value, ValueError)


@pytest.mark.parametrize("threads", [2.0, True, "2"])
def test_threads_of_the_wrong_type(ct_dataset, threads):
    with pytest.raises(TypeError, match="threads must be an integer"):
        dicomrender.render(ct_dataset, threads=threads)
    with pytest.raises(TypeError, match="threads must be an integer"):
        dicomrender.set_threads(threads)


def test_threads_any_integer_in_range(ct_dataset):
    expected = dicomrender.render(ct_dataset)
    for threads in (1, np.int64(3), 64):
        np.testing.assert_array_equal(dicomrender.render(ct_dataset, threads=threads), expected)
    before = dicomrender.get_threads()
    try:
        dicomrender.set_threads(np.int32(2))
        assert dicomrender.get_threads() == 2
    finally:
        dicomrender.set_threads(before)


# ---- 19b: +-inf in float pixel data ---------------------------------------------------------------------


def _float_dataset(values: np.ndarray, modality: str = "OT") -> pydicom.Dataset:
    ds = make_dataset(np.zeros(values.shape, np.uint16), modality=modality)
    del ds.PixelData, ds.BitsStored, ds.HighBit, ds.PixelRepresentation
    ds.BitsAllocated, ds.FloatPixelData = 32, values.astype("<f4").tobytes()
    return ds


@pytest.mark.parametrize("preset", [None, "auto", "minmax", "percentile", "histogram"])
def test_data_driven_windows_ignore_infinities(preset):
    values = np.linspace(-50, 300, 256, dtype=np.float32).reshape(16, 16)
    with_inf = values.copy()
    with_inf[0, 0], with_inf[5, 7] = np.inf, -np.inf
    with_nan = values.copy()
    with_nan[0, 0] = with_nan[5, 7] = np.nan
    got = dicomrender.render(_float_dataset(with_inf), preset)
    assert got[0, 0] == 255 and got[5, 7] == 0  # saturated by the pipeline
    same = dicomrender.render(_float_dataset(with_nan), preset)  # NaN was ignored already: the same window
    mask = np.isfinite(with_inf)
    np.testing.assert_array_equal(got[mask], same[mask])


def test_minmax_window_of_finite_values():
    values = np.array([[np.inf, 2.0], [10.0, -np.inf]], dtype=np.float32)
    got = dicomrender.render(_float_dataset(values), "minmax")
    np.testing.assert_array_equal(got, dicomrender.render(_float_dataset(values), window=(6.5, 9.0)))
    only = np.array([[np.inf, -np.inf]], dtype=np.float32)
    assert dicomrender.render(_float_dataset(only), "auto").tolist() == [[255, 0]]
    with pytest.raises(errors.PresetError, match="NaN or \\+-inf"):
        dicomrender.render(_float_dataset(only), "percentile")


def test_mr_plugin_ignores_infinities():
    try:
        get_preset("mr")
    except errors.UnknownPresetError:
        pytest.skip("the example plugin dicomrender-presets-mr is not installed")
    values = np.linspace(1, 300, 256, dtype=np.float32).reshape(16, 16)
    values[3, 3] = np.inf
    got = dicomrender.render(_float_dataset(values, modality="MR"), "mr")
    assert got[3, 3] == 255
