"""A valid preset plugin published under the entry-point name of the built-in presets."""

from dicomrender import Preset, hookimpl


@hookimpl
def register_presets(register):
    register(Preset("clash_window", "Never registered: the plugin name is taken.", center=0, width=100))
