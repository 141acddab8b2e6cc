"""Loading preset plugins and building the preset registry.

The plugin manager is created lazily, once, on the first preset look-up
(thread-safe).  The built-in presets (:mod:`dicomrender.presets.builtin`) are
always registered first; third-party plugins come from the entry-point group
``dicomrender``.  The environment variable ``DICOMRENDER_PLUGINS`` limits
which third-party plugins load, so that tests and production runs are
reproducible:

- unset: every installed plugin;
- ``""`` (empty): none, only the built-in presets;
- ``"mr,other"``: only those, matched by entry-point name or distribution name.

A plugin whose import or ``register_presets`` hook raises is skipped with a
:class:`PluginWarning` naming its distribution and the error; every other
plugin still loads.  A preset name or alias registered twice raises
:class:`dicomrender.PluginError` naming both plugins.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import threading
import warnings
from dataclasses import dataclass, replace
from typing import Dict, List, Optional

import pluggy

from ..errors import PluginError, PluginWarning
from . import builtin, hookspecs
from .preset import Preset

__all__ = [
    "ENV_VAR",
    "PluginWarning",
    "PluginInfo",
    "get_plugin_manager",
    "plugin_infos",
    "registry",
    "register_plugin",
    "unregister_plugin",
    "reset",
]

#: Environment variable limiting which third-party plugins load.
ENV_VAR = "DICOMRENDER_PLUGINS"

BUILTIN_SOURCE = "dicomrender"


@dataclass(frozen=True)
class PluginInfo:
    """Where a registered plugin comes from.

    Attributes
    ----------
    name : str
        The plugin name in the plugin manager (entry-point name for installed plugins).
    source : str
        What the preset table shows: ``"dicomrender"`` for the built-in
        presets, the distribution name for installed plugins, the plugin name
        for plugins registered in code.
    distribution : str or None
        Distribution name and version (``"dicomrender-presets-mr 0.1.0"``).
    entry_point : str or None
        ``name = value`` of the entry point.
    """

    name: str
    source: str
    distribution: Optional[str] = None
    entry_point: Optional[str] = None

    def describe(self) -> str:
        """Human-readable origin used in warnings and errors."""
        if self.source == BUILTIN_SOURCE and self.distribution is None:
            return "dicomrender (built-in presets)"
        if self.distribution:
            return f"plugin {self.name!r} of distribution {self.distribution}"
        return f"plugin {self.name!r}"


class _Registry:
    """Presets by lower-case name and alias, in registration order."""

    def __init__(self):
        self.presets: List[Preset] = []
        self.names: Dict[str, Preset] = {}
        self.origin: Dict[str, PluginInfo] = {}

    def add(self, preset, info: PluginInfo) -> None:
        if not isinstance(preset, Preset):
            raise PluginError(f"{info.describe()} registered {preset!r}, which is not a dicomrender.Preset",
                              attribute="register_presets")
        preset = replace(preset, source=info.source)
        keys = [preset.name] + list(preset.aliases)
        lowered = [k.lower() for k in keys]
        if len(set(lowered)) != len(lowered):
            raise PluginError(f"{info.describe()} registers preset {preset.name!r} with a repeated name or alias "
                              f"({', '.join(keys)})", attribute="register_presets")
        for key in lowered:
            if key in self.names:
                other = self.names[key]
                raise PluginError(
                    f"preset name {key!r} is registered twice: by preset {other.name!r} of "
                    f"{self.origin[key].describe()} and by preset {preset.name!r} of {info.describe()}",
                    attribute="register_presets")
        for key in lowered:
            self.names[key] = preset
            self.origin[key] = info
        self.presets.append(preset)


_lock = threading.RLock()
_manager: Optional[pluggy.PluginManager] = None
_infos: Dict[str, PluginInfo] = {}
_registry: Optional[_Registry] = None


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).strip().lower()


def _allowed() -> Optional[set]:
    """Names allowed by the environment variable; None: all."""
    value = os.environ.get(ENV_VAR)
    if value is None:
        return None
    return {_normalize(n) for n in value.split(",") if n.strip()}


def _entry_points() -> list:
    """``(entry_point, distribution)`` of the group, one per distinct entry point."""
    seen = set()
    found = []
    for dist in importlib.metadata.distributions():
        dist_name = dist.metadata["Name"] or "unknown"
        for ep in dist.entry_points:
            if ep.group != hookspecs.ENTRY_POINT_GROUP:
                continue
            key = (_normalize(dist_name), ep.name, ep.value)
            if key in seen:  # the same distribution found twice on sys.path
                continue
            seen.add(key)
            found.append((ep, dist))
    return found


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allowed = _allowed()
    matched = set()
    for ep, dist in _entry_points():
        dist_name = dist.metadata["Name"] or "unknown"
        names = {_normalize(ep.name), _normalize(dist_name)}
        if allowed is not None:
            if not names & allowed:
                continue
            matched |= names & allowed
        info = PluginInfo(ep.name, dist_name, f"{dist_name} {dist.version}", f"{ep.name} = {ep.value}")
        if pm.has_plugin(ep.name) or ep.name in _infos:
            other = _infos.get(ep.name) or PluginInfo(ep.name, ep.name)
            warnings.warn(f"dicomrender plugin {ep.name!r} of distribution {info.distribution} is skipped: "
                          f"another plugin already uses that name ({other.describe()})",
                          PluginWarning, stacklevel=2)
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:
            warnings.warn(f"dicomrender plugin {ep.name!r} of distribution {info.distribution} failed to load "
                          f"({ep.value}): {type(exc).__name__}: {exc}", PluginWarning, stacklevel=2)
            continue
        _infos[ep.name] = info
    if allowed:
        missing = allowed - matched
        if missing:
            warnings.warn(f"{ENV_VAR} names {', '.join(sorted(missing))}, but no such dicomrender plugin is installed",
                          PluginWarning, stacklevel=2)


def get_plugin_manager() -> pluggy.PluginManager:
    """The plugin manager, created and loaded on the first call."""
    global _manager
    with _lock:
        if _manager is None:
            pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
            pm.add_hookspecs(hookspecs)
            pm.register(builtin, name=BUILTIN_SOURCE)
            _infos[BUILTIN_SOURCE] = PluginInfo(BUILTIN_SOURCE, BUILTIN_SOURCE)
            _load_entry_points(pm)
            _manager = pm
        return _manager


def _build_registry(pm: pluggy.PluginManager) -> _Registry:
    reg = _Registry()
    # One implementation at a time, in registration order, so that a failing
    # third-party hook is skipped alone and duplicates name the earlier plugin.
    for impl in pm.hook.register_presets.get_hookimpls():
        info = _infos.get(impl.plugin_name) or PluginInfo(impl.plugin_name, impl.plugin_name)
        pending: list = []
        try:
            impl.function(register=pending.append)
        except Exception as exc:
            if info.source == BUILTIN_SOURCE:
                raise
            warnings.warn(f"dicomrender {info.describe()} failed in register_presets: {type(exc).__name__}: {exc}",
                          PluginWarning, stacklevel=3)
            continue
        # only a plugin whose hook completed contributes presets
        for preset in pending:
            reg.add(preset, info)
    return reg


def registry() -> _Registry:
    """The preset registry, built on the first call (loads the plugins)."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = _build_registry(get_plugin_manager())
        return _registry


def plugin_infos() -> List[PluginInfo]:
    """The loaded plugins, built-in first."""
    with _lock:
        pm = get_plugin_manager()
        return [_infos.get(name) or PluginInfo(name, name) for name, _ in pm.list_name_plugin()]


def register_plugin(plugin, name: Optional[str] = None) -> str:
    """Register a plugin object (a module or instance with ``@hookimpl`` functions) in code.

    The preset registry is rebuilt on the next look-up, so duplicate names
    raise :class:`dicomrender.PluginError` then.

    Returns
    -------
    str
        The name the plugin was registered under.
    """
    global _registry
    with _lock:
        pm = get_plugin_manager()
        registered = pm.register(plugin, name=name)
        if registered is None:
            raise PluginError(f"plugin {name or plugin!r} is already registered or blocked", attribute="plugin")
        _infos[registered] = PluginInfo(registered, registered)
        _registry = None
        return registered


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered with :func:`register_plugin` (or any by name)."""
    global _registry
    with _lock:
        pm = get_plugin_manager()
        if pm.unregister(name=name) is None:
            raise PluginError(f"no plugin named {name!r} is registered", attribute="plugin")
        _infos.pop(name, None)
        _registry = None


def reset() -> None:
    """Forget the loaded plugins; the next look-up loads them again (reads ``DICOMRENDER_PLUGINS`` anew)."""
    global _manager, _registry
    with _lock:
        _manager = None
        _registry = None
        _infos.clear()
