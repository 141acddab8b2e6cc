"""``dicomrender serve`` as users run it: a real uvicorn process on a loopback port, and the CLI."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("uvicorn", reason="the [serve] extra (uvicorn) is not installed")
httpx = pytest.importorskip("httpx", reason="httpx (test extra) is not installed")

import dicomrender  # noqa: E402
from dicomrender.cli import main  # noqa: E402
from dicomrender.io import encode_image  # noqa: E402

from .serve_data import decode, make_folder, server_process  # noqa: E402


def test_real_server_process(tmp_path):
    f = make_folder(tmp_path / "tree")
    with server_process(f.root, tmp_path / "cache") as url:
        studies = httpx.get(url + "/dicomweb/studies?PatientID=P1").json()
        assert [s["0020000D"]["Value"][0] for s in studies] == [f.ct_study]
        uid = f.ct_by_position[3]
        base = f"{url}/dicomweb/studies/{f.ct_study}/series/{f.ct_series}/instances/{uid}"
        with httpx.Client(timeout=30) as client:
            r = client.get(base + "/rendered", params={"window": "60,300", "accept": "image/png"})
            assert r.status_code == 200
            np.testing.assert_array_equal(decode(r.content), dicomrender.render(f.paths[uid], window=(60, 300)))
            r = client.get(base + "/rendered", params={"quality": "80"}, headers={"Accept": "image/jpeg"})
            expected = encode_image(dicomrender.render(f.paths[uid]), "JPEG", quality=80)
            np.testing.assert_array_equal(decode(r.content), decode(expected))
            assert client.get(base + "/rendered", headers={"If-None-Match": r.headers["etag"],
                                                           "Accept": "image/jpeg"},
                              params={"quality": "80"}).status_code == 304
            assert client.delete(url + "/dicomweb/studies").status_code == 405
            assert client.get(url + "/").status_code == 200
    # the process is gone: its port no longer answers
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/dicomweb/studies", timeout=2)
    # the index file stayed in the cache folder
    assert list((tmp_path / "cache").glob("index-*.sqlite"))


def test_cli_without_the_serve_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn raises ImportError
    assert main(["serve", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pip install 'dicomrender[serve]'" in err


def test_cli_usage_errors(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", str(tmp_path), "--port", "70000"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        main(["serve", str(tmp_path), "--workers", "0"])
