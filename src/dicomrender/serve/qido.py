"""QIDO-RS (PS3.18 10.6): studies, series and instances of the index matching a query, as DICOM JSON.

Matching (PS3.4 C.2.2.2): single values; wildcards ``*`` and ``?`` on text attributes; UID lists
(``1.2,1.3`` or ``1.2\\1.3``); date and time ranges (``20200101-20201231``, ``-20201231``,
``20200101-``); an empty value matches everything and asks for the attribute to be returned.
``ModalitiesInStudy`` matches studies with at least one series of a listed modality.  Unknown
parameters and malformed values are refused (:class:`~dicomrender.errors.InvalidArgumentError`,
HTTP 400) rather than ignored, so a misspelled key never silently returns everything.
"""

from __future__ import annotations

import difflib
import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ..dicom.source import read_file
from ..errors import InvalidArgumentError
from .attributes import (
    ATTRIBUTES,
    BY_KEYWORD,
    LEVELS,
    MODALITIES_IN_STUDY,
    SERIES_INSTANCES,
    STUDY_INSTANCES,
    STUDY_SERIES,
    UID,
    UID_MAX,
    Attribute,
    json_value,
    lookup,
)
from .index import Index

__all__ = ["search", "MAX_RESULTS", "check_uid"]

#: Results per response when no ``limit`` is given, and the largest ``limit`` accepted.
MAX_RESULTS = 10000
_PARAMETERS = ("limit", "offset", "includefield", "fuzzymatching")
_DATE = re.compile(r"\d{8}")
_TIME = re.compile(r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?")
#: Attributes every result of a level carries (PS3.18 table 10.6.3-3..5, those the index holds).
_DEFAULT = {
    "study": [a for a in ATTRIBUTES if a.level == "study"],
    "series": [a for a in ATTRIBUTES if a.level == "series" and a.keyword != "BodyPartExamined"
               ] + [BY_KEYWORD["StudyInstanceUID"]],
    "instance": [BY_KEYWORD[k] for k in ("SOPClassUID", "SOPInstanceUID", "InstanceNumber", "Rows", "Columns",
                                     "NumberOfFrames", "StudyInstanceUID", "SeriesInstanceUID")],
}
_ORDER = {
    "study": "MAX(study_date), MAX(study_time), study_uid",
    "series": "study_uid, CAST(MAX(series_number) AS INTEGER), series_uid",
    "instance": "study_uid, series_uid, MIN(position) IS NULL, MIN(position), "
                "CAST(MAX(instance_number) AS INTEGER), sop_uid",
}
_GROUP = {"study": "study_uid", "series": "series_uid", "instance": "sop_uid"}


def check_uid(uid: str, what: str) -> str:
    """``uid`` when it is a DICOM UID, else :class:`InvalidArgumentError` (HTTP 400)."""
    if not (0 < len(uid) <= UID_MAX and UID.fullmatch(uid)):
        raise InvalidArgumentError(f"{what} {uid[:80]!r} is not a DICOM UID (digits and dots, at most 64)",
                                   attribute=what)
    return uid


def _integer(params: Mapping[str, Sequence[str]], name: str, default: int, high: int) -> int:
    values = params.get(name)
    if not values:
        return default
    text = values[-1]
    if not text.isdigit() or int(text) > high:
        raise InvalidArgumentError(f"{name} must be an integer from 0 to {high}, got {text[:40]!r}", attribute=name)
    return int(text)


def _allowed(level: str, attribute: Attribute) -> bool:
    if attribute is MODALITIES_IN_STUDY:
        return level == "study"
    return LEVELS.index(attribute.level) <= LEVELS.index(level)


def _attribute(level: str, name: str) -> Attribute:
    attribute = lookup(name)
    if attribute is None or not _allowed(level, attribute):
        valid = [a.keyword for a in ATTRIBUTES if _allowed(level, a)] + list(_PARAMETERS)
        if level == "study":
            valid.append(MODALITIES_IN_STUDY.keyword)
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InvalidArgumentError(f"{name[:80]!r} is not a matching key of a {level} query{hint}; keys: "
                                   f"{', '.join(valid)}", attribute=name[:80])
    return attribute


def _split(text: str) -> List[str]:
    return [v for v in re.split(r"[,\\]", text) if v != ""]


def _condition(attribute: Attribute, text: str) -> Tuple[str, list]:
    """The SQL condition (on one instance row) of one matching key."""
    column = attribute.column
    if attribute is MODALITIES_IN_STUDY:
        values = _split(text)
        marks = ", ".join("?" * len(values))
        return f"study_uid IN (SELECT study_uid FROM instances WHERE modality IN ({marks}))", values
    if attribute.vr == "UI":
        values = [check_uid(v, attribute.keyword) for v in _split(text)]
        return f"{column} IN ({', '.join('?' * len(values))})", values
    if attribute.vr in ("DA", "TM"):
        pattern = _DATE if attribute.vr == "DA" else _TIME
        low, dash, high = text.partition("-")
        for part in (low, high):
            if part and not pattern.fullmatch(part):
                raise InvalidArgumentError(f"{attribute.keyword} {text[:40]!r} is not a {attribute.vr} value or "
                                           f"range (e.g. 20200101-20201231, -20201231, 20200101-)",
                                           attribute=attribute.keyword)
        if not dash:
            return f"{column} = ?", [low]
        if not low and not high:
            raise InvalidArgumentError(f"{attribute.keyword} range {text!r} has no end", attribute=attribute.keyword)
        where: List[str] = [f"{column} != ''"]
        bounds: list = []
        if low:
            where.append(f"{column} >= ?")
            bounds.append(low)
        if high:
            where.append(f"{column} <= ?" if attribute.vr == "DA" else f"substr({column}, 1, ?) <= ?")
            bounds.extend([high] if attribute.vr == "DA" else [len(high), high])
        return " AND ".join(where), bounds
    if attribute.vr in ("IS", "US", "DS"):
        try:
            number = float(text)
        except ValueError:
            raise InvalidArgumentError(f"{attribute.keyword} must be a number, got {text[:40]!r}",
                                       attribute=attribute.keyword) from None
        return f"CAST({column} AS REAL) = ?", [number]
    if attribute.vr == "CS" and ("," in text or "\\" in text):
        values = _split(text)
        return f"{column} IN ({', '.join('?' * len(values))})", values
    if "*" in text or "?" in text:  # GLOB: case-sensitive like DICOM matching; "[" is GLOB's own
        return f"{column} GLOB ?", [text.replace("[", "[[]")]
    return f"{column} = ?", [text]


def search(index: Index, level: str, params: Mapping[str, Sequence[str]], study: Optional[str] = None,
           series: Optional[str] = None) -> List[dict]:
    """The DICOM JSON results of a QIDO query at ``level`` (``"study"``, ``"series"``, ``"instance"``),
    within ``study`` and ``series`` when the path names them.  ``params``: each query key's values."""
    where: List[str] = []
    values: list = []
    returned: Dict[str, Attribute] = {a.tag: a for a in _DEFAULT[level]}
    extra: Dict[str, str] = {}  # tags to read from a file's header: includefield of attributes not indexed
    for name, texts in params.items():
        if name in ("limit", "offset", "fuzzymatching"):
            continue
        if name == "includefield":
            for text in texts:
                _include(level, text, returned, extra)
            continue
        attribute = _attribute(level, name)
        returned[attribute.tag] = attribute
        for text in texts:
            if text != "":
                sql, args = _condition(attribute, text)
                where.append(f"({sql})")
                values.extend(args)
    if study is not None:
        where.append("study_uid = ?")
        values.append(study)
    if series is not None:
        where.append("series_uid = ?")
        values.append(series)
    limit = _integer(params, "limit", MAX_RESULTS, MAX_RESULTS)
    offset = _integer(params, "offset", 0, 2 ** 62)
    selected = ", ".join(f"MAX({a.column}) AS {a.column}" for a in ATTRIBUTES)
    counts = {
        "study": ", GROUP_CONCAT(DISTINCT modality) AS modalities, COUNT(DISTINCT series_uid) AS n_series, "
                 "COUNT(DISTINCT sop_uid) AS n_instances",
        "series": ", COUNT(DISTINCT sop_uid) AS n_instances",
        "instance": "",
    }[level]
    sql = (f"SELECT {selected}, MIN(path) AS path{counts} FROM instances "
           f"{'WHERE ' + ' AND '.join(where) if where else ''} GROUP BY {_GROUP[level]} "
           f"ORDER BY {_ORDER[level]} LIMIT ? OFFSET ?")
    rows = index.query(sql, values + [limit, offset])
    return [_result(level, row, returned, extra) for row in rows]


def _include(level: str, text: str, returned: Dict[str, Attribute], extra: Dict[str, str]) -> None:
    for name in _split(text):
        if name == "all":
            returned.update({a.tag: a for a in ATTRIBUTES if _allowed(level, a)})
            if level == "study":
                returned[MODALITIES_IN_STUDY.tag] = MODALITIES_IN_STUDY
            continue
        attribute = lookup(name)
        if attribute is not None and _allowed(level, attribute):
            returned[attribute.tag] = attribute
            continue
        extra[_tag_of(name)] = name


def _tag_of(name: str) -> str:
    """The 8-digit tag of a keyword or tag that the index does not hold (read from the file)."""
    from pydicom.datadict import tag_for_keyword

    if re.fullmatch(r"[0-9A-Fa-f]{8}", name):
        return name.upper()
    tag = tag_for_keyword(name)
    if tag is None:
        raise InvalidArgumentError(f"includefield {name[:80]!r} is not a DICOM keyword or tag",
                                   attribute="includefield")
    return f"{tag:08X}"


def _result(level: str, row, returned: Dict[str, Attribute], extra: Dict[str, str]) -> dict:
    result: Dict[str, dict] = {}
    if extra:
        result.update(_from_file(row["path"], extra))
    for tag, attribute in returned.items():
        if attribute is MODALITIES_IN_STUDY:
            result[tag] = json_value(attribute, sorted(m for m in (row["modalities"] or "").split(",") if m))
        else:
            result[tag] = json_value(attribute, row[attribute.column])
    if level == "study":
        result[STUDY_SERIES.tag] = json_value(STUDY_SERIES, row["n_series"])
        result[STUDY_INSTANCES.tag] = json_value(STUDY_INSTANCES, row["n_instances"])
        result[MODALITIES_IN_STUDY.tag] = json_value(
            MODALITIES_IN_STUDY, sorted(m for m in (row["modalities"] or "").split(",") if m))
    elif level == "series":
        result[SERIES_INSTANCES.tag] = json_value(SERIES_INSTANCES, row["n_instances"])
    return dict(sorted(result.items()))


def _from_file(path: str, tags: Dict[str, str]) -> Dict[str, dict]:
    """DICOM JSON of ``tags`` read from the header of ``path`` (an indexed file); absent ones are left out."""
    try:
        ds, _ = read_file(path, whole=False)
    except Exception:  # changed or broken since it was indexed: the indexed attributes still answer
        return {}
    out = {}
    for tag in tags:
        element = ds.get(int(tag, 16))
        if element is not None and element.VR not in ("OB", "OW", "OF", "OD", "OL", "OV", "UN", "SQ"):
            out[tag] = element.to_json_dict(bulk_data_element_handler=None, bulk_data_threshold=1 << 16)
    return out
