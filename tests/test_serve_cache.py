"""The server's memory of parsed files, and its worker processes: a cached render equals ``render(path)``,
a changed file is read again, the bound holds, and no worker outlives a killed server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the [serve] extra (starlette) is not installed")
httpx = pytest.importorskip("httpx", reason="httpx (test extra) is not installed")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

import dicomrender  # noqa: E402
from dicomrender.serve.app import create_app  # noqa: E402
from dicomrender.serve.cache import DatasetCache  # noqa: E402
from dicomrender.serve.index import Index  # noqa: E402

from .serve_data import decode, free_port, make_folder  # noqa: E402
from .synthetic import make_dataset, write_dataset  # noqa: E402


def _write(path, value: int, uid=None):
    ds = make_dataset(np.full((8, 8), value, np.uint16), bits_stored=12, modality="MR")
    if uid is not None:
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
    return write_dataset(ds, path), ds


def test_cache_returns_the_parsed_file_until_it_changes(tmp_path):
    path, ds = _write(tmp_path / "a.dcm", 100)
    cache = DatasetCache(1 << 20)
    first = cache.get(path)
    assert cache.get(path) is first and (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(dicomrender.render(first, window=(100, 50)),
                                  dicomrender.render(path, window=(100, 50)))
    # the same path rewritten (another size): read again, the old entry dropped
    time.sleep(0.01)
    ds = make_dataset(np.full((8, 10), 200, np.uint16), bits_stored=12, modality="MR")
    write_dataset(ds, path)
    second = cache.get(path)
    assert second is not first and second.Columns == 10 and cache.misses == 2
    assert len(cache._entries) == 1 and cache.bytes == len(second.PixelData) + (64 << 10)


def test_cache_bound_and_no_cache(tmp_path):
    paths = [_write(tmp_path / f"{k}.dcm", k)[0] for k in range(3)]
    entry = 128 + (64 << 10)  # 8x8 words and the header allowance
    cache = DatasetCache(2 * entry)
    for path in paths:
        cache.get(path)
    assert cache.bytes == 2 * entry and [k[0] for k in cache._entries] == paths[1:]  # least recently used out
    cache.get(paths[1])
    assert cache.hits == 1
    none = DatasetCache(0)
    none.get(paths[0]), none.get(paths[0])
    assert (none.hits, none.misses, none.bytes) == (0, 2, 0)
    with pytest.raises(ValueError, match="max_bytes"):
        DatasetCache(-1)


def test_served_render_follows_a_changed_file(tmp_path):
    f = make_folder(tmp_path / "tree")
    index = Index(str(f.root), str(tmp_path / "index.sqlite"))
    index.update(progress=False)
    uid = f.ct_by_position[0]
    url = f"/dicomweb/studies/{f.ct_study}/series/{f.ct_series}/instances/{uid}/rendered"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with TestClient(create_app(index), raise_server_exceptions=False) as client:
            before = decode(client.get(url, params={"window": "0,400", "accept": "image/png"}).content)
            np.testing.assert_array_equal(before, dicomrender.render(f.paths[uid], window=(0, 400)))
            # the file changes on disk (same size, later mtime): the next render reads it again
            ds = dicomrender.dicom.source.read_dataset(f.paths[uid])[0]
            ds.PixelData = (np.frombuffer(ds.PixelData, np.uint16) // 2).astype(np.uint16).tobytes()
            ds.save_as(f.paths[uid])
            st = os.stat(f.paths[uid])
            os.utime(f.paths[uid], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
            after = decode(client.get(url, params={"window": "0,400", "accept": "image/png"}).content)
            np.testing.assert_array_equal(after, dicomrender.render(f.paths[uid], window=(0, 400)))
            assert not np.array_equal(before, after)
    index.close()


def _children(pid: int) -> list:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_worker_processes_serve_and_die_with_a_killed_server(tmp_path):
    f = make_folder(tmp_path / "tree")
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "dicomrender.cli", "serve", str(f.root), "--port", str(port),
                                "--cache-dir", str(tmp_path / "cache"), "--quiet", "--processes", "2"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list = []
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/dicomweb/studies", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        uid = f.ct_by_position[2]
        base = f"{url}/dicomweb/studies/{f.ct_study}/series/{f.ct_series}/instances/{uid}/rendered"
        for _ in range(4):  # whichever worker answers renders as render() does
            r = httpx.get(base, params={"window": "60,300", "accept": "image/png"}, timeout=30)
            np.testing.assert_array_equal(decode(r.content), dicomrender.render(f.paths[uid], window=(60, 300)))
        # uvicorn's supervisor and its worker processes (each a child of the server process)
        workers = [pid for child in _children(process.pid) for pid in [child] + _children(child)]
        assert len(workers) >= 2
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in workers if _alive(pid)], "a worker outlived the killed server"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
