"""The index of ``dicomrender serve``: what it holds, incremental updates by size and mtime, broken files."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from dicomrender.serve.index import Index, default_cache_dir, index_path

from .serve_data import make_folder
from .synthetic import make_dataset, write_dataset


def sop_uids(index: Index):
    return sorted(r[0] for r in index.query("SELECT sop_uid FROM instances"))


def test_first_build_reads_the_dicom_files_and_counts_the_rest(tmp_path):
    f = make_folder(tmp_path / "tree")
    index = Index(str(f.root), str(tmp_path / "cache" / "i.sqlite"))
    stats = index.update(progress=False)
    # 5 CT + 3 MR + cine + the broken file (its header is sound); notes.txt skipped; the symlink not followed
    assert (stats.files, stats.added, stats.skipped, stats.removed) == (11, 10, 1, 0)
    assert sop_uids(index) == sorted(f.paths)
    (path, reason), = index.skipped()
    assert path.endswith("notes.txt") and "NotDicomError" in reason
    rows = index.instances(f.ct_study, f.ct_series)
    assert [r["sop_uid"] for r in rows] == f.ct_by_position
    assert [r["position"] for r in rows] == [-30.0, -10.0, 10.0, 30.0, 50.0]
    row = rows[0]
    assert (row["patient_id"], row["study_date"], row["modality"], row["rows"], row["columns"]) == \
        ("P1", "20200315", "CT", "96", "128")
    assert all(os.path.realpath(r["path"]).startswith(os.path.realpath(f.root)) for r in
               index.query("SELECT path FROM instances"))
    index.close()


def test_restart_reads_only_new_and_changed_files(tmp_path):
    f = make_folder(tmp_path / "tree")
    cache = str(tmp_path / "cache" / "i.sqlite")
    Index(str(f.root), cache).update(progress=False)
    index = Index(str(f.root), cache)
    stats = index.update(progress=False)
    assert (stats.added, stats.changed, stats.removed, stats.unchanged) == (0, 0, 0, 11)
    # one file replaced by another image (new size and mtime), one deleted, one added
    changed_uid, deleted_uid = f.ct_by_position[0], f.ct_by_position[1]
    replacement = make_dataset(np.zeros((10, 12), np.uint16), PatientID="CHANGED", StudyInstanceUID=f.ct_study,
                               SeriesInstanceUID=f.ct_series)
    write_dataset(replacement, f.paths[changed_uid])
    os.unlink(f.paths[deleted_uid])
    added = make_dataset(np.zeros((4, 4), np.uint16), PatientID="NEW", StudyInstanceUID=f.ct_study,
                         SeriesInstanceUID=f.ct_series)
    write_dataset(added, f.root / "ct" / "added.dcm")
    shutil.copy(f.root / "notes.txt", f.root / "notes2.txt")
    stats = index.update(progress=False)
    # notes2.txt is new but not DICOM: skipped, not added
    assert (stats.added, stats.changed, stats.removed, stats.unchanged, stats.skipped) == (1, 1, 1, 9, 2)
    uids = set(sop_uids(index))
    assert replacement.SOPInstanceUID in uids and added.SOPInstanceUID in uids
    assert changed_uid not in uids and deleted_uid not in uids
    stats = index.update(reindex=True, progress=False)
    assert (stats.added, stats.unchanged, stats.skipped) == (10, 0, 2)  # 10 - 1 deleted + 1 added
    index.close()


def test_a_file_that_became_unreadable_leaves_the_index(tmp_path):
    f = make_folder(tmp_path / "tree")
    index = Index(str(f.root), str(tmp_path / "i.sqlite"))
    index.update(progress=False)
    uid = f.ct_by_position[0]
    with open(f.paths[uid], "r+b") as fh:  # the DICM marker and the header gone
        fh.write(b"\xff" * 400)
    stats = index.update(progress=False)
    assert stats.changed == 0 and stats.skipped == 2
    assert uid not in sop_uids(index)
    index.close()


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_truncated_headers_and_missing_uids_are_skipped(tmp_path):
    root = tmp_path / "tree"
    root.mkdir()
    ds = make_dataset(np.zeros((8, 8), np.uint16), StudyInstanceUID="1.2.3", SeriesInstanceUID="1.2.4")
    good = write_dataset(ds, root / "good.dcm")
    data = open(good, "rb").read()
    (root / "truncated.dcm").write_bytes(data[:200])
    no_uid = make_dataset(np.zeros((8, 8), np.uint16), SeriesInstanceUID="1.2.4")  # no StudyInstanceUID
    write_dataset(no_uid, root / "nouid.dcm")
    bad_uid = make_dataset(np.zeros((8, 8), np.uint16), StudyInstanceUID="1.2.3/../x", SeriesInstanceUID="1.2")
    write_dataset(bad_uid, root / "baduid.dcm")
    index = Index(str(root), str(tmp_path / "i.sqlite"))
    stats = index.update(progress=False)
    assert stats.added == 1 and stats.skipped == 3
    reasons = dict(index.skipped())
    assert "study_uid" in reasons[str(root / "nouid.dcm")]
    assert "study_uid" in reasons[str(root / "baduid.dcm")]
    index.close()


def test_index_path_in_the_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == str(tmp_path / "xdg" / "dicomrender")
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    path = index_path(str(a))
    assert os.path.dirname(path) == str(tmp_path / "xdg" / "dicomrender")
    assert os.path.basename(path).startswith("index-") and path.endswith(".sqlite")
    assert path != index_path(str(b))
    assert index_path(str(a), str(tmp_path / "c")) == os.path.join(str(tmp_path / "c"), os.path.basename(path))
    os.symlink(a, tmp_path / "link")
    assert index_path(str(tmp_path / "link")) == path  # one folder, one index, however it is named


@pytest.mark.parametrize("progress", [True, False])
def test_progress_bar_on_stderr(tmp_path, capsys, progress):
    pytest.importorskip("tqdm", reason="tqdm (the progress extra) is not installed")
    f = make_folder(tmp_path / "tree")
    Index(str(f.root), str(tmp_path / "i.sqlite")).update(progress=progress)
    err = capsys.readouterr().err
    assert ("indexing" in err and "11/11" in err) == progress
