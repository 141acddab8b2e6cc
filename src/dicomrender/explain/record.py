"""The :class:`Explanation` record: every decision of a render, as values and as a readable report.

Frozen dataclasses all the way down, so an explanation can be compared, kept and serialised
(:meth:`Explanation.to_dict` gives plain JSON types); ``str()`` is the multi-line report that
``dicomrender info`` prints.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

__all__ = ["Explanation", "FrameGroup", "ModalityStep", "ChannelVOI", "PresetInfo", "Inversion", "DisplayStep",
           "NOT_REQUESTED"]

#: What a display step not asked for says.
NOT_REQUESTED = "not requested"


@dataclass(frozen=True)
class ModalityStep:
    """The modality transform of a group of frames: Rescale Slope/Intercept or a Modality LUT."""

    kind: str  # "rescale" or "modality LUT"
    slope: Optional[float] = None
    intercept: Optional[float] = None
    #: Modality LUT: (entries, first mapped stored value, bits per entry) of its LUT Descriptor
    descriptor: Optional[Tuple[int, int, int]] = None
    explanation: Optional[str] = None
    rescale_type: Optional[str] = None
    hounsfield: bool = False

    def describe(self) -> str:
        units = " (Hounsfield units)" if self.hounsfield else ""
        if self.kind == "rescale":
            text = f"Rescale Slope {self.slope:g}, Intercept {self.intercept:g}"
            if self.slope == 1 and self.intercept == 0:
                text += " (identity)"
            return text + (f", RescaleType {self.rescale_type}" if self.rescale_type else "") + units
        assert self.descriptor is not None
        entries, first, bits = self.descriptor
        text = f"Modality LUT: {entries} entries from stored value {first}, {bits} bits"
        return text + (f" ({self.explanation!r})" if self.explanation else "") + units


@dataclass(frozen=True)
class PresetInfo:
    """The preset that chose a VOI: its name and parameters."""

    name: str
    description: str
    kind: str  # "fixed", "computed" or "stack"
    center: Optional[float] = None
    width: Optional[float] = None
    function: Optional[str] = None
    units: Optional[str] = None
    modalities: Tuple[str, ...] = ()
    reference: str = ""
    source: str = "dicomrender"

    def describe(self) -> str:
        if self.kind == "fixed":
            text = f"preset {self.name!r}: fixed window {self.center:g}/{self.width:g} {self.function}"
        else:
            text = f"preset {self.name!r} ({self.kind})"
        if self.units:
            text += f", in {self.units}"
        if self.source != "dicomrender":
            text += f", from plugin {self.source}"
        return text + (f" - {self.description.rstrip('.')}" if self.description else "")


@dataclass(frozen=True)
class ChannelVOI:
    """The VOI of one output channel of a group of frames, and why it was chosen."""

    kind: str  # "window" or "VOI LUT"
    source: str  # see dicomrender.presets.lookup.Choice
    reason: str
    center: Optional[float] = None
    width: Optional[float] = None
    #: the VOI LUT Function of a window (LINEAR, LINEAR_EXACT, SIGMOID)
    function: Optional[str] = None
    #: VOI LUT: (entries, first mapped value, bits per entry)
    descriptor: Optional[Tuple[int, int, int]] = None
    #: the VOI's own explanation (Window Center & Width Explanation, LUT Explanation, or the preset's word)
    explanation: Optional[str] = None
    preset: Optional[PresetInfo] = None
    #: the header item chosen, 0-based, and how many the header has
    header_item: Optional[int] = None
    header_items: Optional[int] = None

    def describe(self) -> str:
        if self.kind == "window":
            text = f"window {self.center:g}/{self.width:g} (centre/width), VOI LUT Function {self.function}"
        else:
            assert self.descriptor is not None
            entries, first, bits = self.descriptor
            text = f"VOI LUT: {entries} entries from {first}, {bits} bits"
        return text + (f" [{self.explanation}]" if self.explanation else "")

    def why(self) -> str:
        if self.source in ("header window", "header VOI LUT") and self.header_item is not None:
            what = "window" if self.source == "header window" else "VOI LUT"
            head = f"header {what} item {self.header_item + 1} of {self.header_items}"
            return f"{head}: {self.reason}"
        if self.preset is not None and self.source in ("fixed", "data", "plugin"):
            return f"{self.preset.describe()}; {self.reason}" if self.source != "fixed" else self.preset.describe()
        return self.reason


@dataclass(frozen=True)
class FrameGroup:
    """Frames ``first_frame .. last_frame`` (0-based, in the file) that share their header parameters."""

    first_frame: int
    last_frame: int
    modality: ModalityStep
    vois: Tuple[ChannelVOI, ...]
    #: the engine's loop for these frames (dicomrender.engine.dispatch.Path value) and what it is
    path: str
    path_description: str

    @property
    def frames(self) -> int:
        return self.last_frame - self.first_frame + 1


@dataclass(frozen=True)
class Inversion:
    """Whether the output is inverted (white for the lowest values) and why."""

    applied: bool
    reason: str


@dataclass(frozen=True)
class DisplayStep:
    """A display step after the grayscale pipeline (overlays, shutters, spatial transformation, a
    presentation state): whether it was requested and what it does."""

    requested: bool
    description: str = NOT_REQUESTED


@dataclass(frozen=True)
class Explanation:
    """Why :func:`dicomrender.render` gives the pixels it gives, for the same arguments.

    ``str()`` is a readable multi-line report; :meth:`to_dict` the same as plain values (JSON).
    ``groups`` is empty for colour images (no modality or VOI step: ``colour`` says what happens).
    """

    filename: Optional[str]
    sop_class: str
    modality: str
    photometric: str
    rows: int
    columns: int
    frames: int
    frames_rendered: Tuple[int, ...]
    stored: str
    transfer_syntax: str
    colour: str
    groups: Tuple[FrameGroup, ...]
    inversion: Inversion
    output_shape: Tuple[int, ...]
    output_dtype: str
    overlays: DisplayStep
    shutters: DisplayStep
    spatial: DisplayStep
    presentation_state: DisplayStep
    warnings: Tuple[str, ...] = ()

    @property
    def vois(self) -> Tuple[ChannelVOI, ...]:
        """The VOIs of the first group of frames (of every frame, unless the frames differ)."""
        return self.groups[0].vois if self.groups else ()

    def to_dict(self) -> Dict[str, Any]:
        """The explanation as plain values (tuples as lists): ``json.dumps`` takes it as it is."""
        return _plain(dataclasses.asdict(self))

    def __str__(self) -> str:
        return "\n".join(_lines(self))


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _frames_text(first: int, last: int) -> str:
    return f"frame {first}" if first == last else f"frames {first}-{last}"


def _lines(e: Explanation) -> List[str]:
    rendered = e.frames_rendered
    which = "all frames" if len(rendered) == e.frames and e.frames > 1 else \
        _frames_text(rendered[0], rendered[-1]) if rendered else "none"
    lines = [
        f"file:            {e.filename or '(data set)'}",
        f"image:           {e.modality or 'no Modality'}, {e.sop_class}",
        f"pixels:          {e.rows}x{e.columns}, {e.frames} frame(s) ({which} rendered), {e.stored}",
        f"transfer syntax: {e.transfer_syntax}",
        f"photometric:     {e.photometric}: {e.colour}",
    ]
    indent = "" if len(e.groups) == 1 else "  "
    for group in e.groups:
        if indent:
            lines.append(f"{_frames_text(group.first_frame, group.last_frame)}:")
        lines.append(f"{indent}{'modality:':<17}{group.modality.describe()}")
        for channel, voi in enumerate(group.vois):
            label = "voi:" if len(group.vois) == 1 else f"voi {channel + 1}:"
            lines.append(f"{indent}{label:<17}{voi.describe()}")
            lines.append(f"{indent}{'':<17}why: {voi.why()}")
        lines.append(f"{indent}{'kernel path:':<17}{group.path}: {group.path_description}")
    lines.append(f"{'inversion:':<17}{'yes' if e.inversion.applied else 'no'} ({e.inversion.reason})")
    lines.append(f"{'output:':<17}{e.output_dtype} {e.output_shape}")
    for name, step in (("overlays", e.overlays), ("shutters", e.shutters), ("spatial", e.spatial),
                       ("presentation", e.presentation_state)):
        lines.append(f"{name + ':':<17}{step.description}")
    for warning in e.warnings:
        lines.append(f"{'warning:':<17}{warning}")
    return lines
