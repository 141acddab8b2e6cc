"""The display steps of an explanation: overlays, shutters, spatial transformation, presentation state.

Which of them exist is :func:`dicomrender.render`'s signature: an option render does not take is
refused by explain too (as a misspelled keyword), so the two accept the same arguments.
"""

from __future__ import annotations

import functools
import inspect
from typing import Dict, FrozenSet, TypedDict

from ..rendering import render
from .record import NOT_REQUESTED, DisplayStep

__all__ = ["display_options", "display_steps"]

#: The display keyword options an explanation reports on, by the record field that reports each.
_FIELDS = {"overlays": "overlays", "shutters": "shutters", "presentation_state": "presentation_state",
           "viewport": "spatial", "rotation": "spatial", "flip": "spatial", "displayed_area": "spatial",
           "annotations": "overlays"}


@functools.lru_cache(maxsize=1)
def display_options() -> FrozenSet[str]:
    """The display keyword options :func:`render` takes (its signature, read once)."""
    return frozenset(name for name in inspect.signature(render).parameters if name in _FIELDS)


class DisplaySteps(TypedDict):
    """The display fields of an :class:`~dicomrender.explain.record.Explanation`."""

    overlays: DisplayStep
    shutters: DisplayStep
    spatial: DisplayStep
    presentation_state: DisplayStep


def display_steps(given: Dict[str, object]) -> DisplaySteps:
    """The record fields ``overlays``, ``shutters``, ``spatial`` and ``presentation_state`` for the display
    options given to explain (those render takes)."""
    steps: Dict[str, list] = {"overlays": [], "shutters": [], "spatial": [], "presentation_state": []}
    for key, value in given.items():
        if value is None or value is False:
            continue
        steps[_FIELDS[key]].append(f"{key}={value!r}")
    made = {field: DisplayStep(True, ", ".join(texts)) if texts else DisplayStep(False, NOT_REQUESTED)
            for field, texts in steps.items()}
    return DisplaySteps(overlays=made["overlays"], shutters=made["shutters"], spatial=made["spatial"],
                        presentation_state=made["presentation_state"])
