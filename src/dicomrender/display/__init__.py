"""Display steps on rendered uint8 images, after the grayscale pipeline: overlay burn-in, shutters,
spatial transformation (rotation, flip), displayed area, viewport scaling, annotations, ICC profiles.

Each function takes numpy arrays and plain values (never the reader's types) and returns a new
array or paints in place; :mod:`dicomrender.rendering` chains them in the order of PS3.4.
"""
