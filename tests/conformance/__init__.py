"""Conformance of dicomrender with dcmtk and pydicom (a package so its conftest stays separate)."""
