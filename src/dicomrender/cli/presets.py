"""``dicomrender presets``: the table of registered presets and the plugins they come from."""

from __future__ import annotations

from ..presets import ENV_VAR, list_presets, plugin_infos, preset_table


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("presets", help="list the registered presets")
    p.set_defaults(handler=run)


def run(args) -> int:
    print(preset_table(list_presets()))
    loaded = ", ".join(info.distribution or info.source for info in plugin_infos())
    print(f"\nplugins: {loaded}  (limit third-party plugins with {ENV_VAR}=name,name; empty: none)")
    return 0
