"""``dicomrender serve``: a read-only DICOMweb server (QIDO-RS, WADO-RS rendered resources) over a
folder tree, with a browser viewer.  Needs the ``[serve]`` extra (Starlette, uvicorn)."""
