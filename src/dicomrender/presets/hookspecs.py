"""Hook specifications of dicomrender plugins.

A plugin is a module (or any object) with functions marked by :data:`hookimpl`.
Third-party packages make theirs known through the entry-point group
``dicomrender``; the entry point names the module::

    # pyproject.toml of the plugin package
    [project.entry-points.dicomrender]
    mr = "dicomrender_presets_mr"

    # dicomrender_presets_mr/__init__.py
    from dicomrender import Preset, hookimpl

    @hookimpl
    def register_presets(register):
        register(Preset("my_window", "What it shows.", center=40, width=400))

The built-in presets are registered by :mod:`dicomrender.presets.builtin`, a
plugin like any other.  ``hookimpl`` is the only name a plugin needs from this
module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from .preset import Preset

__all__ = ["PROJECT_NAME", "ENTRY_POINT_GROUP", "hookspec", "hookimpl", "register_presets"]

#: The pluggy project name: markers and the plugin manager use it.
PROJECT_NAME = "dicomrender"

#: The entry-point group third-party plugin packages declare.
ENTRY_POINT_GROUP = "dicomrender"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)

#: Marks a function of a plugin module as the implementation of a hook.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_presets(register: "Callable[[Preset], None]") -> None:
    """Register the presets this plugin provides.

    Called once per plugin, the first time a preset is looked up (not
    ``firstresult``: every plugin's implementation runs).  Plugins are called
    in load order: the built-in presets first, then third-party plugins.

    Parameters
    ----------
    register : callable
        Call ``register(preset)`` with a :class:`dicomrender.Preset` for each
        preset.  Registering a name or an alias that another preset already
        uses raises :class:`dicomrender.PluginError` naming both plugins.

    Returns
    -------
    None
        The return value is ignored.
    """
