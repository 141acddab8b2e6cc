"""``dicomrender serve``: QIDO-RS and WADO-RS through the ASGI app (Starlette's test client), against
the attributes written into the synthetic files and against ``dicomrender.render`` itself."""

from __future__ import annotations

import email.parser
import email.policy
import io
import os
import warnings

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the [serve] extra (starlette) is not installed")
pytest.importorskip("httpx", reason="httpx (test extra) is not installed")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the test client's notice about httpx
    from starlette.testclient import TestClient  # noqa: E402

import dicomrender  # noqa: E402
from dicomrender.io import encode_image  # noqa: E402
from dicomrender.serve.app import create_app  # noqa: E402
from dicomrender.serve.index import Index  # noqa: E402

from .serve_data import decode, make_folder  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    folder = make_folder(root / "tree")
    index = Index(str(folder.root), str(root / "cache" / "index.sqlite"))
    index.update(progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the test client's own notice about httpx
        with TestClient(create_app(index), raise_server_exceptions=False) as client:
            yield folder, client
    index.close()


def uids(results, tag):
    return [r[tag]["Value"][0] for r in results]


def url(f, uid, series=None, study=None):
    study = study or (f.ct_study if uid in f.ct_by_position else f.mr_study)
    series = series or f.ct_series
    return f"/dicomweb/studies/{study}/series/{series}/instances/{uid}"


# ---- QIDO-RS ------------------------------------------------------------------------------------


def test_studies_as_dicom_json(served):
    f, client = served
    r = client.get("/dicomweb/studies")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/dicom+json")
    studies = {s["0020000D"]["Value"][0]: s for s in r.json()}
    assert set(studies) == {f.ct_study, f.mr_study}  # the symlinked file outside the tree is not indexed
    ct = studies[f.ct_study]
    assert ct["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]}
    assert ct["00100020"] == {"vr": "LO", "Value": ["P1"]}
    assert ct["00080020"] == {"vr": "DA", "Value": ["20200315"]}
    assert ct["00080061"] == {"vr": "CS", "Value": ["CT"]}
    assert ct["00201206"]["Value"] == [1] and ct["00201208"]["Value"] == [5]
    assert ct["00080050"] == {"vr": "SH", "Value": ["A100"]}
    mr = studies[f.mr_study]
    assert mr["00080061"]["Value"] == ["MR", "XA"]
    assert mr["00201206"]["Value"] == [3] and mr["00201208"]["Value"] == [5]  # 3 MR, the cine, the broken one


@pytest.mark.parametrize("query, expected", [
    ("PatientID=P1", ["ct"]),
    ("00100020=P2", ["mr"]),
    ("PatientName=Doe*", ["ct"]),
    ("PatientName=R?e^Richard", ["mr"]),
    ("StudyDate=20200315", ["ct"]),
    ("StudyDate=20200101-20201231", ["ct"]),
    ("StudyDate=-20201231", ["ct"]),
    ("StudyDate=20210101-", ["mr"]),
    ("StudyDate=20190101-20191231", []),
    ("ModalitiesInStudy=XA", ["mr"]),
    ("ModalitiesInStudy=CT,MR", ["ct", "mr"]),
    ("ModalitiesInStudy=US", []),
    ("StudyDescription=CT*", ["ct"]),
])
def test_study_matching(served, query, expected):
    f, client = served
    r = client.get(f"/dicomweb/studies?{query}")
    assert r.status_code == 200, r.text
    names = {f.ct_study: "ct", f.mr_study: "mr"}
    assert sorted(names[u] for u in uids(r.json(), "0020000D")) == expected


def test_uid_list_limit_offset_and_includefield(served):
    f, client = served
    r = client.get(f"/dicomweb/studies?StudyInstanceUID={f.ct_study},{f.mr_study}")
    assert sorted(uids(r.json(), "0020000D")) == sorted([f.ct_study, f.mr_study])
    everything = uids(client.get("/dicomweb/studies").json(), "0020000D")
    assert everything == [f.ct_study, f.mr_study]  # ordered by StudyDate
    assert uids(client.get("/dicomweb/studies?limit=1").json(), "0020000D") == everything[:1]
    assert uids(client.get("/dicomweb/studies?limit=1&offset=1").json(), "0020000D") == everything[1:]
    assert client.get("/dicomweb/studies?offset=2").json() == []
    # an indexed attribute, and one read from the header of the file
    r = client.get(f"/dicomweb/studies/{f.ct_study}/series/{f.ct_series}/instances"
                   f"?includefield=WindowCenter&includefield=00200032")
    results = r.json()
    assert [x["00281050"]["Value"] for x in results] == [[40.0]] * 5
    assert [x["00200032"]["Value"][2] for x in results] == [-30.0, -10.0, 10.0, 30.0, 50.0]


def test_series_and_instances_in_slice_order(served):
    f, client = served
    series = client.get(f"/dicomweb/studies/{f.mr_study}/series").json()
    assert uids(series, "0020000E")[:2] == [f.mr_series, f.cine_series]  # by SeriesNumber 3, 4, 9
    assert [s["00201209"]["Value"][0] for s in series] == [3, 1, 1]
    assert uids(client.get("/dicomweb/series?Modality=XA").json(), "0020000E") == [f.cine_series]
    instances = client.get(f"/dicomweb/studies/{f.ct_study}/series/{f.ct_series}/instances").json()
    assert uids(instances, "00080018") == f.ct_by_position
    assert uids(client.get("/dicomweb/instances?PatientID=P1&InstanceNumber=2").json(), "00080018") == \
        [list(f.paths)[1]]
    cine = client.get(f"/dicomweb/studies/{f.mr_study}/instances?SOPInstanceUID={f.cine}").json()
    assert cine[0]["00280008"] == {"vr": "IS", "Value": [6]}


@pytest.mark.parametrize("query, attribute", [
    ("PatientId=P1", "PatientId"),       # misspelled key: refused, not ignored
    ("SOPInstanceUID=1.2", "SOPInstanceUID"),   # an instance key at the study level
    ("StudyDate=2020", "StudyDate"),
    ("StudyDate=-", "StudyDate"),
    ("StudyInstanceUID=1.02.3", "StudyInstanceUID"),
    ("limit=-1", "limit"),
    ("includefield=NoSuchKeyword", "includefield"),
])
def test_bad_queries_are_400(served, query, attribute):
    _, client = served
    r = client.get(f"/dicomweb/studies?{query}")
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "bad request" and body["attribute"] == attribute and body["detail"]


def test_misspelled_key_names_the_closest(served):
    _, client = served
    assert "did you mean 'PatientID'" in client.get("/dicomweb/studies?PatientId=P1").json()["detail"]


# ---- WADO-RS rendered ------------------------------------------------------------------------------


@pytest.mark.parametrize("query, kwargs", [
    ("", {}),
    ("&window=100,1000", {"window": (100.0, 1000.0)}),
    ("&window=-200,350.5,sigmoid", {"window": (-200.0, 350.5), "function": "SIGMOID"}),
    ("&window=40,80,linear-exact", {"window": (40.0, 80.0), "function": "LINEAR_EXACT"}),
    ("&preset=bone", {"preset": "bone"}),
    ("&viewport=20,20", {"viewport": (20, 20)}),
    ("&viewport=30,30,8,4,-32,40", {"viewport": (30, 30, 8, 4, -32, 40)}),
])
def test_png_equals_render(served, query, kwargs):
    f, client = served
    for uid in f.ct_by_position[:2]:
        r = client.get(url(f, uid) + "/rendered?accept=image/png" + query)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/png"
        expected = dicomrender.render(f.paths[uid], **kwargs)
        np.testing.assert_array_equal(decode(r.content), expected)


@pytest.mark.parametrize("quality", [95, 40])
def test_jpeg_equals_render_encoded_at_the_same_quality(served, quality):
    f, client = served
    uid = f.ct_by_position[0]
    r = client.get(url(f, uid) + f"/rendered?window=40,400&quality={quality}", headers={"Accept": "image/jpeg"})
    assert r.headers["content-type"] == "image/jpeg"
    expected = encode_image(dicomrender.render(f.paths[uid], window=(40, 400)), "JPEG", quality=quality)
    np.testing.assert_array_equal(decode(r.content), decode(expected))


@pytest.mark.parametrize("accept, media", [
    ("image/png", "image/png"),
    ("image/webp;q=0.4, image/png;q=0.9", "image/png"),
    ("image/tiff, image/webp;q=0.5", "image/webp"),
    ("image/*", "image/jpeg"),
    ("*/*", "image/jpeg"),
    ('multipart/related; type="image/png"', "image/png"),
])
def test_accept_header_with_q_values(served, accept, media):
    f, client = served
    r = client.get(url(f, f.ct_by_position[0]) + "/rendered", headers={"Accept": accept})
    assert r.status_code == 200 and r.headers["content-type"] == media


def test_accept_query_overrides_header_and_406(served):
    f, client = served
    base = url(f, f.ct_by_position[0])
    r = client.get(base + "/rendered?accept=image/png", headers={"Accept": "image/jpeg"})
    assert r.headers["content-type"] == "image/png"
    r = client.get(base + "/rendered", headers={"Accept": "image/tiff, application/pdf"})
    assert r.status_code == 406 and r.json()["error"] == "not acceptable"
    r = client.get("/dicomweb/studies", headers={"Accept": "image/png"})
    assert r.status_code == 406


def test_multiframe_instance_frames_and_animation(served):
    f, client = served
    base = url(f, f.cine, series=f.cine_series, study=f.mr_study)
    expected = dicomrender.render(f.paths[f.cine])
    assert expected.shape == (6, 32, 32)
    # one frame is rendered as render(frame=) renders it (no header window: min-max of that frame alone)
    r = client.get(base + "/frames/3/rendered?accept=image/png")
    np.testing.assert_array_equal(decode(r.content), dicomrender.render(f.paths[f.cine], frame=2))
    # the instance of a multi-frame object: an animated GIF by default, each frame of render()
    r = client.get(base + "/rendered")
    assert r.headers["content-type"] == "image/gif"
    from PIL import Image, ImageSequence

    gif = Image.open(io.BytesIO(r.content))
    frames = [np.asarray(frame.convert("L")) for frame in ImageSequence.Iterator(gif)]
    assert len(frames) == 6
    np.testing.assert_array_equal(np.stack(frames), expected)
    assert gif.info["duration"] == 40  # FrameTime
    # a frame list as an animation, and as multipart/related of PNG
    r = client.get(base + "/frames/1,4/rendered", headers={"Accept": "image/gif"})
    assert r.headers["content-type"] == "image/gif"
    assert Image.open(io.BytesIO(r.content)).n_frames == 2
    r = client.get(base + "/frames/1,4/rendered?accept=image/png")
    parts = multipart_parts(r)
    assert len(parts) == 2
    np.testing.assert_array_equal(decode(parts[1]), dicomrender.render(f.paths[f.cine], frame=3))
    assert client.get(base + "/frames/7/rendered").status_code == 404
    assert client.get(base + "/frames/0/rendered").status_code == 400


def multipart_parts(response) -> list:
    head = f"Content-Type: {response.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + response.content)
    return [part.get_payload(decode=True) for part in message.iter_parts()]


def test_series_rendered_is_multipart_of_each_instance(served):
    f, client = served
    r = client.get(f"/dicomweb/studies/{f.ct_study}/series/{f.ct_series}/rendered?accept=image/png&window=0,500")
    assert r.headers["content-type"].startswith('multipart/related; type="image/png"')
    parts = multipart_parts(r)
    assert len(parts) == 5
    for part, uid in zip(parts, f.ct_by_position):
        np.testing.assert_array_equal(decode(part), dicomrender.render(f.paths[uid], window=(0, 500)))


def test_thumbnails_show_the_middle_instance(served):
    f, client = served
    middle = f.ct_by_position[2]  # z = 10 of -30, -10, 10, 30, 50
    expected = dicomrender.render(f.paths[middle], viewport=(128, 128))
    assert expected.shape == (96, 128)  # 96 x 128 fits 128 x 128 as it is
    for path in (f"/dicomweb/studies/{f.ct_study}/series/{f.ct_series}/thumbnail",
                 f"/dicomweb/studies/{f.ct_study}/thumbnail", url(f, middle) + "/thumbnail"):
        r = client.get(path + "?accept=image/png")
        assert r.status_code == 200, r.text
        np.testing.assert_array_equal(decode(r.content), expected)
    r = client.get(url(f, middle) + "/thumbnail?accept=image/png&viewport=32,32")
    np.testing.assert_array_equal(decode(r.content), dicomrender.render(f.paths[middle], viewport=(32, 32)))


@pytest.mark.parametrize("query, attribute", [
    ("window=40", "window"),
    ("window=40,0", "window"),
    ("window=40,80,cubic", "window"),
    ("window=nan,80", "window"),
    ("quality=0", "quality"),
    ("quality=abc", "quality"),
    ("viewport=0,10", "viewport"),
    ("viewport=10,10,300,0,5,5", "viewport"),   # a region outside the image
    ("iccprofile=adobergb", "iccprofile"),
    ("iccprofile=maybe", "iccprofile"),
    ("preset=no-such-preset", "preset"),
    ("preset=bone&window=1,2", "preset"),
    ("windw=40,80", "windw"),
    ("annotation=patient", "annotation"),
])
def test_bad_rendered_parameters_are_400(served, query, attribute):
    f, client = served
    r = client.get(url(f, f.ct_by_position[0]) + "/rendered?" + query)
    assert r.status_code == 400, r.text
    assert r.json()["attribute"] == attribute


def test_hu_preset_on_mr_is_400(served):
    f, client = served
    uid = next(u for u, p in f.paths.items() if os.path.basename(p) == "mr0")
    r = client.get(url(f, uid, series=f.mr_series, study=f.mr_study) + "/rendered?preset=lung")
    assert r.status_code == 400 and "Hounsfield" in r.json()["detail"]


def test_unknown_and_malformed_uids(served):
    f, client = served
    assert client.get(url(f, "1.2.3.4")).status_code == 404
    r = client.get(url(f, "1.2.3.4") + "/rendered")
    assert r.status_code == 404 and r.json()["error"] == "not found"
    assert client.get(f"/dicomweb/studies/{f.ct_study}/series/1.2.3/rendered").status_code == 404
    for bad in ("..", "1.2.x", "01.2", "1" * 70, "%2e%2e%2fetc"):
        r = client.get(f"/dicomweb/studies/{bad}/series/{f.ct_series}/rendered")
        assert r.status_code in (400, 404), bad
        assert "root:" not in r.text


def test_read_only_and_no_listing(served):
    f, client = served
    for method in ("post", "put", "delete", "patch"):
        r = getattr(client, method)(f"/dicomweb/studies/{f.ct_study}")
        assert r.status_code in (404, 405)
        r = getattr(client, method)("/dicomweb/studies")
        assert r.status_code == 405 and r.json()["error"] == "method not allowed"
    for path in ("/static/", "/static/..%2f..%2fpyproject.toml", "/static/index.py", "/dicomweb/", "/tree/ct"):
        assert client.get(path).status_code == 404, path


def test_broken_file_is_422_naming_its_uid_and_the_server_goes_on(served):
    f, client = served
    r = client.get(url(f, f.broken, series=f.broken_series, study=f.mr_study) + "/rendered")
    assert r.status_code == 422
    body = r.json()
    assert body["uid"] == f.broken and f.broken in body["detail"] and "PixelData" in body["detail"]
    assert client.get(url(f, f.ct_by_position[0]) + "/rendered").status_code == 200


def test_etag_and_304(served):
    f, client = served
    uid = f.ct_by_position[0]
    base = url(f, uid) + "/rendered?window=40,400"
    first = client.get(base)
    tag = first.headers["etag"]
    assert first.headers["cache-control"].startswith("private")
    again = client.get(base, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    assert client.get(base + "0").headers["etag"] != tag  # other parameters
    assert client.get(base, headers={"Accept": "image/png"}).headers["etag"] != tag  # other media type
    st = os.stat(f.paths[uid])
    os.utime(f.paths[uid], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the file changed
    r = client.get(base, headers={"If-None-Match": tag})
    assert r.status_code == 200 and r.headers["etag"] != tag


def test_metadata_without_bulk_data(served):
    f, client = served
    uid = f.ct_by_position[0]
    r = client.get(url(f, uid) + "/metadata")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/dicom+json")
    (item,) = r.json()
    assert item["00080018"]["Value"] == [uid]
    assert item["00200032"]["Value"] == [0.0, 0.0, -30.0]
    assert "7FE00010" not in item
    series = client.get(f"/dicomweb/studies/{f.ct_study}/series/{f.ct_series}/metadata").json()
    assert [m["00080018"]["Value"][0] for m in series] == f.ct_by_position


def test_viewer_page_and_presets(served):
    _, client = served
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<script src="/static/viewer.js">' in r.text
    assert client.get("/static/viewer.js").headers["content-type"].startswith("text/javascript")
    names = [p["name"] for p in client.get("/api/presets").json()]
    assert names == [p.name for p in dicomrender.list_presets()]
