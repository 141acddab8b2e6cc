"""The attributes the index stores and QIDO-RS returns: keyword, tag, VR, query level, SQL column.

One table describes them all, so the index schema, the matching keys QIDO accepts and the DICOM JSON
(PS3.18 F.2) it writes cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

__all__ = ["Attribute", "ATTRIBUTES", "BY_KEYWORD", "BY_TAG", "LEVELS", "UID", "json_value", "lookup"]

#: A DICOM UID (PS3.5 9.1): digits and dots, at most 64 characters, no leading zero in a component.
UID = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")
UID_MAX = 64

#: Query levels, outermost first; an attribute of a level is returned by it and the levels below.
LEVELS = ("study", "series", "instance")


@dataclass(frozen=True)
class Attribute:
    keyword: str
    tag: str  # 8 upper-case hex digits, as DICOM JSON spells it
    vr: str
    level: str  # "study" (patient attributes too), "series" or "instance"
    column: str


ATTRIBUTES: Tuple[Attribute, ...] = (
    Attribute("PatientName", "00100010", "PN", "study", "patient_name"),
    Attribute("PatientID", "00100020", "LO", "study", "patient_id"),
    Attribute("PatientBirthDate", "00100030", "DA", "study", "patient_birth_date"),
    Attribute("PatientSex", "00100040", "CS", "study", "patient_sex"),
    Attribute("StudyInstanceUID", "0020000D", "UI", "study", "study_uid"),
    Attribute("StudyDate", "00080020", "DA", "study", "study_date"),
    Attribute("StudyTime", "00080030", "TM", "study", "study_time"),
    Attribute("AccessionNumber", "00080050", "SH", "study", "accession_number"),
    Attribute("ReferringPhysicianName", "00080090", "PN", "study", "referring_physician"),
    Attribute("StudyID", "00200010", "SH", "study", "study_id"),
    Attribute("StudyDescription", "00081030", "LO", "study", "study_description"),
    Attribute("SeriesInstanceUID", "0020000E", "UI", "series", "series_uid"),
    Attribute("Modality", "00080060", "CS", "series", "modality"),
    Attribute("SeriesNumber", "00200011", "IS", "series", "series_number"),
    Attribute("SeriesDescription", "0008103E", "LO", "series", "series_description"),
    Attribute("SeriesDate", "00080021", "DA", "series", "series_date"),
    Attribute("BodyPartExamined", "00180015", "CS", "series", "body_part"),
    Attribute("SOPClassUID", "00080016", "UI", "instance", "sop_class_uid"),
    Attribute("SOPInstanceUID", "00080018", "UI", "instance", "sop_uid"),
    Attribute("InstanceNumber", "00200013", "IS", "instance", "instance_number"),
    Attribute("Rows", "00280010", "US", "instance", "rows"),
    Attribute("Columns", "00280011", "US", "instance", "columns"),
    Attribute("NumberOfFrames", "00280008", "IS", "instance", "frames"),
    Attribute("PhotometricInterpretation", "00280004", "CS", "instance", "photometric"),
    Attribute("WindowCenter", "00281050", "DS", "instance", "window_center"),
    Attribute("WindowWidth", "00281051", "DS", "instance", "window_width"),
)

BY_KEYWORD: Dict[str, Attribute] = {a.keyword: a for a in ATTRIBUTES}
BY_TAG: Dict[str, Attribute] = {a.tag: a for a in ATTRIBUTES}

#: Computed study and series attributes (not matching keys, except ModalitiesInStudy).
MODALITIES_IN_STUDY = Attribute("ModalitiesInStudy", "00080061", "CS", "study", "")
STUDY_SERIES = Attribute("NumberOfStudyRelatedSeries", "00201206", "IS", "study", "")
STUDY_INSTANCES = Attribute("NumberOfStudyRelatedInstances", "00201208", "IS", "study", "")
SERIES_INSTANCES = Attribute("NumberOfSeriesRelatedInstances", "00201209", "IS", "series", "")


def lookup(name: str) -> Optional[Attribute]:
    """The attribute named by keyword (``PatientID``) or tag (``00100020``), or None."""
    if name in BY_KEYWORD:
        return BY_KEYWORD[name]
    if name == MODALITIES_IN_STUDY.keyword or name.upper() == MODALITIES_IN_STUDY.tag:
        return MODALITIES_IN_STUDY
    return BY_TAG.get(name.upper())


def json_value(attribute: Attribute, value) -> dict:
    """The DICOM JSON element (PS3.18 F.2.2) of ``value`` (the stored text; several values as a list)."""
    values = value if isinstance(value, list) else ([] if value in (None, "") else [value])
    element: dict = {"vr": attribute.vr}
    if not values:
        return element
    if attribute.vr == "PN":
        element["Value"] = [{"Alphabetic": str(v)} for v in values]
    elif attribute.vr in ("IS", "US"):
        element["Value"] = [int(v) for v in values]
    elif attribute.vr == "DS":
        element["Value"] = [float(v) for v in values]
    else:
        element["Value"] = [str(v) for v in values]
    return element
