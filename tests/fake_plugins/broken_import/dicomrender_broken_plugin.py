"""A deliberately broken preset plugin: importing it fails, as with a missing dependency."""

import dicomrender_dependency_that_is_not_installed  # noqa: F401
