"""The test suite of dicomrender (a package: shared helpers are imported relatively)."""
