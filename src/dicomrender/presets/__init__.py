"""Presets: named ways of choosing the VOI window of an image, registered by plugins.

- :mod:`.preset`: the :class:`Preset` type;
- :mod:`.context`: :class:`RenderContext`, what a preset's ``compute`` function receives;
- :mod:`.windows`: the data-driven windows (``header``, ``auto``, ``minmax``, ``percentile``, ``histogram``);
- :mod:`.hookspecs`: the plugin hook, and the ``hookimpl`` marker plugins use;
- :mod:`.builtin`: the built-in presets, a default plugin registered like any other;
- :mod:`.registry`: loading plugins (entry points, ``DICOMRENDER_PLUGINS``) into the preset registry;
- :mod:`.lookup`: look-up by name and resolving ``preset=`` to one VOI per channel.
"""

from .context import RenderContext
from .hookspecs import hookimpl
from .lookup import get_preset, list_presets, preset_table, preset_windows, resolve
from .preset import Preset
from .registry import ENV_VAR, plugin_infos, register_plugin, unregister_plugin
from .windows import (
                      DEFAULT_HISTOGRAM_PERCENT,
                      DEFAULT_PERCENTILES,
                      auto_window,
                      header_window,
                      histogram_window,
                      minmax_window,
                      percentile_window,
)

__all__ = ["Preset", "RenderContext", "hookimpl", "get_preset", "list_presets", "preset_table", "preset_windows",
           "resolve", "register_plugin", "unregister_plugin", "plugin_infos", "ENV_VAR", "header_window",
           "minmax_window", "auto_window", "percentile_window", "histogram_window", "DEFAULT_PERCENTILES",
           "DEFAULT_HISTOGRAM_PERCENT"]
