"""A preset plugin whose hook raises after registering one preset (which must not appear)."""

from dicomrender import Preset, hookimpl


@hookimpl
def register_presets(register):
    register(Preset("half_registered", "Must not be registered.", center=1, width=2))
    raise RuntimeError("the preset table of this plugin is corrupt")
