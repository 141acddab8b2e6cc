"""The index of a folder tree: one SQLite row per DICOM file, headers only, updated incrementally.

A file is DICOM by the one rule of :mod:`dicomrender.dicom.source` (its header is read as
``convert`` reads it, leaving Pixel Data on disk).  Each row holds the QIDO attributes
(:mod:`.attributes`), the position along the slice normal (to order a series), the path, size and
modification time.  On restart only new and changed files (by size and mtime) are read again and
deleted ones are dropped; files that are not DICOM or cannot be read are remembered too (so they are
not read again) and counted, never served.

The server only ever opens paths found here: requests name UIDs, which map to indexed rows.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import sqlite3
import stat
import sys
import threading
import warnings
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from ..dicom.source import read_file
from .attributes import ATTRIBUTES, UID, UID_MAX

__all__ = ["Index", "IndexStats", "default_cache_dir", "index_path"]

log = logging.getLogger("dicomrender.serve")

#: Bumped when the schema changes: an index of another version is rebuilt.
SCHEMA_VERSION = 1
_COLUMNS = tuple(a.column for a in ATTRIBUTES)


@dataclass
class IndexStats:
    """What an update did: files seen, read (new or changed), removed, kept as they were, and skipped
    (not DICOM, unreadable, or without the three UIDs)."""

    files: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: int = 0

    def summary(self) -> str:
        return (f"indexed {self.files} files: {self.added} new, {self.changed} changed, {self.removed} removed, "
                f"{self.unchanged} unchanged, {self.skipped} skipped (not DICOM or unreadable)")


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/dicomrender`` (``~/.cache/dicomrender`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "dicomrender")


def index_path(folder: str, cache_dir: Optional[str] = None) -> str:
    """The index file of ``folder``: ``index-<hash of its real path>.sqlite`` in ``cache_dir``."""
    digest = hashlib.sha256(os.path.realpath(folder).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return os.path.join(cache_dir or default_cache_dir(), f"index-{digest}.sqlite")


def _files(folder: str) -> Iterator[Tuple[str, os.stat_result]]:
    """Regular files below ``folder``: symlinks (to files or folders) are not followed, so nothing
    outside the tree is ever indexed."""
    for parent, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(parent, d)))
        for name in sorted(filenames):
            path = os.path.join(parent, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                yield path, st


def _text(ds, keyword: str, vr: str) -> str:
    """The stored text of one attribute: first value, numbers checked (a bad number is left empty)."""
    try:
        value = ds.get(keyword)
    except Exception:  # a value pydicom cannot convert
        return ""
    if value is None or value == "":
        return ""
    if not isinstance(value, (str, bytes)) and hasattr(value, "__len__") and vr != "PN":
        value = value[0] if len(value) else ""
    if vr in ("IS", "US", "DS"):
        try:
            number = float(value)
        except (TypeError, ValueError):
            return ""
        if not math.isfinite(number):
            return ""
        return str(int(number)) if vr != "DS" else repr(number)
    return str(value).strip().replace("\x00", "")


def _position(ds) -> Optional[float]:
    """The distance along the slice normal (ImagePositionPatient . normal of ImageOrientationPatient)."""
    try:
        ipp = [float(v) for v in ds.get("ImagePositionPatient") or ()]
        iop = [float(v) for v in ds.get("ImageOrientationPatient") or ()]
    except (TypeError, ValueError):
        return None
    if len(ipp) != 3 or len(iop) != 6:
        return None
    r, c = iop[:3], iop[3:]
    normal = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
    value = sum(p * n for p, n in zip(ipp, normal))
    return value if math.isfinite(value) else None


def read_row(path: str) -> Dict[str, object]:
    """The index row of the DICOM file at ``path`` (its header only).

    Raises
    ------
    DicomRenderError, OSError, or pydicom's errors for a broken file; ValueError when a UID is missing
    or malformed.
    """
    ds, _ = read_file(path, whole=False)
    row: Dict[str, object] = {a.column: _text(ds, a.keyword, a.vr) for a in ATTRIBUTES}
    for column in ("study_uid", "series_uid", "sop_uid"):
        uid = str(row[column])
        if not (uid and len(uid) <= UID_MAX and UID.fullmatch(uid)):
            raise ValueError(f"{column} missing or not a UID: {uid!r}")
    row["position"] = _position(ds)
    return row


class Index:
    """The SQLite index of one folder tree (one connection, serialised by a lock: queries are short).

    Parameters
    ----------
    folder : str
        The tree served.
    path : str
        The SQLite file (its folder is created).
    """

    def __init__(self, folder: str, path: str):
        self.folder = os.path.realpath(folder)
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._schema()

    # ---- schema and updates ---------------------------------------------------------------

    def _schema(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            self._db.executescript("DROP TABLE IF EXISTS instances; DROP TABLE IF EXISTS skipped;")
        columns = ", ".join(f"{c} TEXT NOT NULL DEFAULT ''" for c in _COLUMNS)
        self._db.executescript(f"""
            CREATE TABLE IF NOT EXISTS instances (
                path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, position REAL, {columns});
            CREATE INDEX IF NOT EXISTS by_study ON instances (study_uid);
            CREATE INDEX IF NOT EXISTS by_series ON instances (series_uid);
            CREATE INDEX IF NOT EXISTS by_sop ON instances (sop_uid);
            CREATE TABLE IF NOT EXISTS skipped (
                path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, reason TEXT NOT NULL);
            PRAGMA user_version = {SCHEMA_VERSION};
        """)
        self._db.commit()

    def update(self, *, reindex: bool = False, progress: Optional[bool] = None) -> IndexStats:
        """Bring the index up to date with the folder: read new and changed files, drop deleted ones.

        ``reindex``: forget everything and read every file again.  ``progress``: a tqdm bar on
        stderr (default: when stderr is a terminal and tqdm is installed).
        """
        stats = IndexStats()
        with self._lock:
            if reindex:
                self._db.executescript("DELETE FROM instances; DELETE FROM skipped;")
            known = {row[0]: (row[1], row[2]) for row in
                     self._db.execute("SELECT path, size, mtime_ns FROM instances UNION ALL "
                                      "SELECT path, size, mtime_ns FROM skipped")}
            files = list(_files(self.folder))
            stats.files = len(files)
            bar = _progress_bar(len(files), progress)
            try:
                for path, st in files:
                    old = known.pop(path, None)
                    if old == (st.st_size, st.st_mtime_ns):
                        stats.unchanged += 1
                    else:
                        self._read(path, st, stats, old is None)
                    if bar is not None:
                        bar.update(1)
            finally:
                if bar is not None:
                    bar.close()
            for path in known:  # deleted, or no longer a regular file
                self._db.execute("DELETE FROM instances WHERE path = ?", (path,))
                self._db.execute("DELETE FROM skipped WHERE path = ?", (path,))
                stats.removed += 1
            self._db.commit()
            stats.skipped = self._db.execute("SELECT COUNT(*) FROM skipped").fetchone()[0]
        log.info("%s", stats.summary())
        return stats

    def _read(self, path: str, st: os.stat_result, stats: IndexStats, new: bool) -> None:
        self._db.execute("DELETE FROM instances WHERE path = ?", (path,))
        self._db.execute("DELETE FROM skipped WHERE path = ?", (path,))
        try:
            with warnings.catch_warnings():  # odd values pydicom tolerates: the file is still indexed
                warnings.simplefilter("ignore")
                row = read_row(path)
        except Exception as exc:  # a broken file is counted, never fatal
            reason = f"{type(exc).__name__}: {exc}"
            self._db.execute("INSERT INTO skipped VALUES (?, ?, ?, ?)", (path, st.st_size, st.st_mtime_ns, reason))
            log.debug("skipped %s: %s", path, reason)
            return
        row.update(path=path, size=st.st_size, mtime_ns=st.st_mtime_ns)
        names = ", ".join(row)
        self._db.execute(f"INSERT INTO instances ({names}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
        if new:
            stats.added += 1
        else:
            stats.changed += 1

    # ---- queries --------------------------------------------------------------------------

    def query(self, sql: str, parameters: Sequence = ()) -> List[sqlite3.Row]:
        """Rows of a read-only query (the QIDO module builds them from the attribute table)."""
        with self._lock:
            return self._db.execute(sql, tuple(parameters)).fetchall()

    def skipped(self) -> List[Tuple[str, str]]:
        """``(path, reason)`` of the files left out of the index."""
        return [(r[0], r[1]) for r in self.query("SELECT path, reason FROM skipped ORDER BY path")]

    def instances(self, study: str, series: Optional[str] = None, instance: Optional[str] = None) -> List[sqlite3.Row]:
        """The rows of a study, series or instance, in slice order (position, InstanceNumber, UID); one row
        per SOP Instance UID (the first path when two files hold the same instance)."""
        where, parameters = ["study_uid = ?"], [study]
        if series is not None:
            where.append("series_uid = ?")
            parameters.append(series)
        if instance is not None:
            where.append("sop_uid = ?")
            parameters.append(instance)
        rows = self.query(f"SELECT * FROM instances WHERE {' AND '.join(where)} "
                          f"ORDER BY position IS NULL, position, CAST(instance_number AS INTEGER), sop_uid, path",
                          parameters)
        seen, unique = set(), []
        for row in rows:
            if row["sop_uid"] not in seen:
                seen.add(row["sop_uid"])
                unique.append(row)
        return unique

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _progress_bar(total: int, progress: Optional[bool]):
    show = sys.stderr.isatty() if progress is None else progress
    if not show:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # the progress bar is optional (the progress extra)
        return None
    return tqdm(total=total, unit="file", file=sys.stderr, desc="indexing", dynamic_ncols=True)
