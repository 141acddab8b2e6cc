"""A preset plugin whose alias clashes with the built-in ``brain`` preset."""

from dicomrender import Preset, hookimpl


@hookimpl
def register_presets(register):
    register(Preset("wide_brain", "Brain with a wider window.", center=40, width=120, aliases=("Brain",)))
