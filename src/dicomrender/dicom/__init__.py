"""Reading DICOM for rendering: the source, element access, the header's pixel description, LUTs,
the stored words of each frame (native or decoded) and the colour path."""
