"""``explain(src, ...)``: why a render looks as it does.

:func:`explain` takes :func:`dicomrender.render`'s arguments and returns an :class:`Explanation`:
the modality transform, the VOI chosen and why, the VOI LUT Function, the inversion and why, the
kernel loop that runs, the output, the colour handling and the warnings.  It makes no decision of
its own: the decisions are :func:`dicomrender.rendering.plan`'s, the one render applies, and the
kernel loop is the engine's own choice (:func:`dicomrender.engine.dispatch.chosen_path`).
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Union

from .._types import VOI, ModalityLut, Rescale, Window
from ..dicom.elements import first_item, get, values
from ..dicom.header import DEFAULT_MAX_MEMORY, DEFAULT_MAX_PIXELS, ImageInfo
from ..dicom.pstate import resolve_state
from ..dicom.source import read_dataset
from ..engine.dispatch import Path, chosen_path
from ..engine.threads import check_threads
from ..errors import DicomRenderError, InvalidArgumentError
from ..presets import Preset
from ..presets.lookup import Choice, check_options
from ..rendering import RENDER_OPTIONS, Plan, check_colour, colour_shape, plan
from .display import display_options, display_steps
from .record import (
    NOT_REQUESTED,
    ChannelVOI,
    DisplayStep,
    Explanation,
    FrameGroup,
    Inversion,
    ModalityStep,
    PresetInfo,
)

__all__ = ["explain", "Explanation", "FrameGroup", "ModalityStep", "ChannelVOI", "PresetInfo", "Inversion",
           "DisplayStep", "NOT_REQUESTED"]

#: What each kernel loop is (dicomrender.engine.dispatch.Path).
PATH_DESCRIPTIONS = {
    Path.NARROW: "narrow table: byte-permute lookup over the at most 256 stored values where the exact table "
                 "changes (a slice of the table: exact by construction)",
    Path.AFFINE: "proven float32 affine loop (engine/proof.py showed it gives the exact table's byte for every "
                 "stored value)",
    Path.LUT: "table gather: the exact uint8 table of every stored value (built by the float64 reference)",
    Path.ARITHMETIC: "fused float64 arithmetic in the kernel, the reference's expressions in its order (wide "
                     "integers or float data)",
    Path.REFERENCE: "float64 reference pipeline (dicomrender._reference), block by block (a LUT over wide or "
                    "float data)",
}

#: How the colour path renders each photometric interpretation.
_COLOUR = {
    "PALETTE COLOR": "Palette Color LUTs to RGB, entries reduced to 8 bits (no VOI)",
    "RGB": "RGB samples, reduced to 8 bits by dropping the low bits (no VOI)",
    "YBR_FULL": "YBR_FULL to RGB (ITU-R BT.601 full range), 8 bits (no VOI)",
    "YBR_FULL_422": "YBR_FULL_422: chroma expanded (native) or decoded (JPEG), then YBR_FULL to RGB (no VOI)",
    "YBR_ICT": "YBR_ICT to RGB (irreversible colour transform of JPEG 2000) (no VOI)",
    "YBR_RCT": "YBR_RCT to RGB (reversible colour transform of JPEG 2000) (no VOI)",
}


def explain(src, preset: Union[str, Sequence[str], None] = None, *, window: Optional[Sequence[float]] = None,
            function: Optional[str] = None, invert: Optional[bool] = None, frame: Optional[int] = None,
            out=None, strict: bool = True, threads: Optional[int] = None,
            max_pixels: Optional[int] = DEFAULT_MAX_PIXELS, max_memory: Optional[int] = DEFAULT_MAX_MEMORY,
            **options) -> Explanation:
    """Explain what :func:`dicomrender.render` does with the same arguments.

    Parameters
    ----------
    src, preset, window, function, invert, frame, strict, max_pixels, max_memory, **options
        As :func:`dicomrender.render`; the decisions are the ones it makes
        (the same code decides).  ``out`` and ``threads`` are accepted so
        that the same keyword arguments can be given to both; they change
        no decision.

    Returns
    -------
    Explanation
        A frozen record: the modality transform and the VOI of each group of
        frames with the reason of each choice, the kernel loop, the
        inversion and its reason, the output shape and dtype, the colour
        handling, the display steps and the warnings (an invalid header
        window skipped...).  ``str()`` of it is a readable report,
        :meth:`Explanation.to_dict` its values for JSON.

    Raises
    ------
    DicomRenderError
        Whatever :func:`dicomrender.render` would raise for these arguments.
    TypeError
        An unknown keyword option, as :func:`dicomrender.render`.
    """
    shown = display_options()
    display = {key: options.pop(key) for key in list(options) if key in shown}
    if options:
        check_options("explain", preset if window is None else (), options, RENDER_OPTIONS,
                      ("src", "preset", "window", "function", "invert", "frame", "out", "strict", "threads",
                       "max_pixels", "max_memory", *sorted(shown)))
    if threads is not None:
        check_threads(threads)
    ds, filename = read_dataset(src)
    try:
        info = ImageInfo.from_dataset(ds, filename, max_pixels=max_pixels, max_memory=max_memory)
        if not info.is_grayscale:
            return _colour(info, preset, window, function, invert, frame, options, display)
        if display.get("presentation_state") is not None:
            return _presented(info, preset, window, function, invert, frame, display)
        decided = plan(info, frame, preset, window, function, invert, strict, options)
        return _grayscale(decided, display)
    except DicomRenderError as exc:
        raise exc.with_filename(filename) from exc.__cause__


def _common(info: ImageInfo) -> dict:
    ds = info.dataset
    fmt = info.format
    if fmt is None:
        stored = f"{info.float_dtype} {info.pixel_keyword}"
    else:
        stored = f"{fmt.bits_stored} of {fmt.bits_allocated} bits stored (high bit {fmt.high_bit}), " \
                 f"{'signed' if fmt.signed else 'unsigned'}"
        if info.packed_bits:
            stored = "1 bit a pixel (packed)"
    tsyntax = info.transfer_syntax
    sop = get(ds, "SOPClassUID")
    return dict(filename=info.filename, sop_class=getattr(sop, "name", None) or str(sop or "no SOP Class UID"),
                modality=info.modality_name, photometric=info.photometric, rows=info.rows, columns=info.columns,
                frames=info.frames, stored=stored,
                transfer_syntax=f"{tsyntax.name} ({tsyntax})" if tsyntax is not None else "not stated")


def _grayscale(decided: Plan, display: dict) -> Explanation:
    info = decided.info
    groups = []
    for run in decided.runs:
        frames = decided.indices[run.start:run.stop]
        vois = tuple(_channel(c) for c in run.choices)
        path = chosen_path(decided.words.dtype, info.format, run.parameters.modality, run.vois, decided.invert)
        groups.append(FrameGroup(frames[0], frames[-1], _modality(info, run.parameters.modality,
                                                                  run.parameters.hounsfield),
                                 vois, path.value, PATH_DESCRIPTIONS[path]))
    colour = "grayscale: modality transform, VOI, inversion, 8 bits by the rounding rule (floor of the exact value)"
    steps = display_steps(display)
    return Explanation(**_common(info), frames_rendered=tuple(decided.indices), colour=colour, groups=tuple(groups),
                       inversion=Inversion(decided.invert, decided.invert_reason),
                       output_shape=tuple(decided.output_shape), output_dtype="uint8", **steps,
                       warnings=tuple(str(w) for w in decided.warnings))


def _colour(info: ImageInfo, preset, window, function, invert, frame, options, display) -> Explanation:
    check_colour(info, preset, window, options)
    colour = _COLOUR.get(info.photometric, info.photometric)
    if window is not None:
        colour = colour.replace("(no VOI)", f"(window {window[0]:g}/{window[1]:g} {function or 'LINEAR'} on each "
                                            f"channel: colour_window=True)")
    inverted = bool(invert)
    reason = f"invert={inverted} argument" if invert is not None else "colour images are not inverted"
    return Explanation(**_common(info), frames_rendered=tuple(info.frame_indices(frame)), colour=colour, groups=(),
                       inversion=Inversion(inverted, reason), output_shape=colour_shape(info, frame),
                       output_dtype="uint8", **display_steps(display), warnings=())


def _presented(info: ImageInfo, preset, window, function, invert, frame, display) -> Explanation:
    """Through a presentation state: its modality transform, VOI and inversion (as render applies them)."""
    if preset is not None:
        raise InvalidArgumentError("presentation_state sets the VOI: it cannot be combined with preset= "
                                   "(window= overrides the state's VOI)", attribute="preset")
    indices = info.frame_indices(frame)
    if len(indices) != 1:
        raise InvalidArgumentError(f"a presentation state applies to one frame: pass frame= for this "
                                   f"{info.frames}-frame image", attribute="frame")
    state, state_file = read_dataset(display["presentation_state"])
    resolved = resolve_state(state, state_file, info, indices[0])
    if window is not None:
        voi: VOI = Window(window[0], window[1], function or "LINEAR", "window=")
        choice = Choice(voi, "window", "window= of the caller, over the presentation state's VOI")
    else:
        choice = Choice(resolved.voi, "presentation state", f"presentation state {state_file or ''}: "
                                                              f"{resolved.voi_source}".replace(" :", ":"))
    do_invert = resolved.invert if invert is None else bool(invert)
    reason = resolved.invert_reason if invert is None else f"invert={do_invert} argument"
    words_dtype = info.word_dtype
    if resolved.presentation_lut is not None and invert is None:
        path, description = Path.REFERENCE.value, "the presentation state's Presentation LUT, in float64"
    else:
        chosen = chosen_path(words_dtype, info.format, resolved.modality, [choice.voi], do_invert)
        path, description = chosen.value, PATH_DESCRIPTIONS[chosen]
    modality = dataclasses.replace(_modality(info, resolved.modality, False),
                                   explanation=f"from {resolved.modality_source}")
    group = FrameGroup(indices[0], indices[0], modality, (_channel(choice),), path, description)
    steps = display_steps(display)
    spatial = [f"rotation {resolved.rotation}", "flipped" if resolved.flip else "not flipped"]
    if resolved.displayed_area is not None:
        spatial.append(f"displayed area {resolved.displayed_area}")
    steps["spatial"] = DisplayStep(True, "presentation state: " + ", ".join(spatial))
    if resolved.shutters is not None:
        steps["shutters"] = DisplayStep(True, f"presentation state: {resolved.shutters}")
    if resolved.overlays:
        steps["overlays"] = DisplayStep(True, f"presentation state activates {len(resolved.overlays)} overlay "
                                              f"plane(s)")
    return Explanation(**_common(info), frames_rendered=tuple(indices), colour="grayscale through the presentation "
                       "state", groups=(group,), inversion=Inversion(do_invert, reason),
                       output_shape=(info.rows, info.columns) if resolved.displayed_area is None else (),
                       output_dtype="uint8", **steps, warnings=())


def _modality(info: ImageInfo, modality, hounsfield: bool) -> ModalityStep:
    if isinstance(modality, Rescale):
        # the rescale type of the frames' own Pixel Value Transformation is not kept: the top level's
        rescale_type = str(get(info.dataset, "RescaleType", "") or "").strip() or None
        return ModalityStep("rescale", modality.slope, modality.intercept, rescale_type=rescale_type,
                            hounsfield=hounsfield)
    assert isinstance(modality, ModalityLut)
    item = first_item(info.dataset, "ModalityLUTSequence")
    descriptor = values(get(item, "LUTDescriptor")) if item is not None else []
    bits = int(descriptor[2]) if len(descriptor) == 3 else 16
    explanation = str(get(item, "LUTExplanation", "") or "") if item is not None else ""
    return ModalityStep("modality LUT", descriptor=(int(modality.data.size), int(modality.first_mapped), bits),
                        explanation=explanation or None, hounsfield=hounsfield)


def _preset_info(preset: Optional[Preset]) -> Optional[PresetInfo]:
    if preset is None:
        return None
    kind = "fixed" if preset.fixed else "stack" if preset.stack else "computed"
    return PresetInfo(preset.name, preset.description, kind, preset.center, preset.width,
                      preset.function if preset.fixed else None, preset.units, preset.modalities, preset.reference,
                      preset.source)


def _channel(choice: Choice) -> ChannelVOI:
    voi: VOI = choice.voi
    channel = ChannelVOI("window", choice.source, choice.reason, explanation=voi.explanation,
                         preset=_preset_info(choice.preset), header_item=choice.index, header_items=choice.count)
    if isinstance(voi, Window):
        return dataclasses.replace(channel, center=voi.center, width=voi.width, function=voi.function)
    return dataclasses.replace(channel, kind="VOI LUT",
                               descriptor=(int(voi.data.size), int(voi.first_mapped), int(voi.bits)))
