"""The ASGI application: routes, content negotiation, ETags, errors and the bound on concurrent renders.

Read-only by construction: every route is GET (and HEAD); any other method gets 405.  Paths name
UIDs, checked against the UID syntax and looked up in the index, so no file name ever comes from a
request.  Renders run in worker threads, at most ``workers`` at once, one kernel thread each.
"""

from __future__ import annotations

import hashlib
import os
from importlib import resources
from typing import Callable, Dict, List, Optional, Sequence

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..engine import usable_cpus
from ..errors import (
    DicomRenderError,
    InvalidArgumentError,
    InvalidWindowError,
    PresetError,
    UnknownPresetError,
)
from ..presets import list_presets
from . import qido, wado
from .cache import DEFAULT_CACHE_BYTES, DatasetCache
from .index import Index
from .params import NotAcceptable, negotiate, parse_frames, parse_request

__all__ = ["create_app"]


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dicomrender")
    except PackageNotFoundError:
        return "unknown"


#: Errors of the request itself (HTTP 400), whether found parsing it or rendering with it.
_BAD_REQUEST = (InvalidArgumentError, InvalidWindowError, UnknownPresetError, PresetError)
_DICOM_JSON = ["application/dicom+json", "application/json"]
_CACHE = "private, max-age=300"
_STATIC = {"index.html": "text/html; charset=utf-8", "viewer.js": "text/javascript; charset=utf-8",
           "viewer.css": "text/css; charset=utf-8"}
#: Part of every ETag: another version of dicomrender may render differently.
_VERSION = _package_version()
#: Resources whose index rows are kept (oldest out first).
_ROWS_KEPT = 4096
_PHRASES = {400: "bad request", 404: "not found", 405: "method not allowed", 406: "not acceptable",
            422: "cannot render", 500: "server error"}


def _error(status: int, detail: str, **extra) -> JSONResponse:
    return JSONResponse({"error": _PHRASES.get(status, "error"), "detail": detail, **extra}, status_code=status)


def _params(request: Request) -> Dict[str, List[str]]:
    params: Dict[str, List[str]] = {}
    for name, value in request.query_params.multi_items():
        params.setdefault(name, []).append(value)
    return params


class Server:
    """The state the routes share: the index and the render limiter."""

    def __init__(self, index: Index, workers: Optional[int] = None, cache_bytes: int = DEFAULT_CACHE_BYTES):
        self.index = index
        self.limiter = anyio.CapacityLimiter(workers or usable_cpus())
        self.datasets = DatasetCache(cache_bytes)
        self._rows: Dict[tuple, list] = {}

    async def rows(self, request: Request) -> list:
        """The instance rows the path names (study, series, instance UIDs), in slice order; 404 when none."""
        p = request.path_params
        uids = [qido.check_uid(p[name], name) if name in p else None for name in ("study", "series", "instance")]
        study, series, instance = uids
        assert study is not None
        key = (study, series, instance)
        if key not in self._rows:  # the index does not change while serving: a look-up once per resource
            found = await anyio.to_thread.run_sync(lambda: self.index.instances(study, series, instance))
            if len(self._rows) >= _ROWS_KEPT:
                self._rows.pop(next(iter(self._rows)))
            self._rows[key] = found
        rows = self._rows[key]
        if not rows:
            named = ", ".join(f"{name} {uid}" for name, uid in zip(("study", "series", "instance"), uids) if uid)
            raise HTTPException(404, f"no indexed {named}")
        return rows

    async def qido(self, request: Request, level: str) -> Response:
        negotiate(request.query_params.get("accept"), request.headers.get("accept"), _DICOM_JSON)
        p = request.path_params
        study = qido.check_uid(p["study"], "study") if "study" in p else None
        series = qido.check_uid(p["series"], "series") if "series" in p else None
        params = {k: v for k, v in _params(request).items() if k != "accept"}
        results = await anyio.to_thread.run_sync(qido.search, self.index, level, params, study, series)
        return JSONResponse(results, media_type="application/dicom+json")

    async def metadata(self, request: Request) -> Response:
        negotiate(request.query_params.get("accept"), request.headers.get("accept"), _DICOM_JSON)
        rows = await self.rows(request)
        tag = _etag(rows, "metadata")
        if _not_modified(request, tag):
            return Response(status_code=304, headers={"ETag": tag, "Cache-Control": _CACHE})
        body = await self._run(rows[0], lambda: [wado.metadata(row) for row in rows])
        return JSONResponse(body, media_type="application/dicom+json", headers={"ETag": tag, "Cache-Control": _CACHE})

    async def rendered(self, request: Request, kind: str) -> Response:
        """``kind``: ``instance``, ``frames``, ``group`` (study or series) or ``thumbnail``."""
        rows = await self.rows(request)
        params = _params(request)
        render_request = parse_request(params)
        accept = params.get("accept", [None])[-1]
        row = wado.representative(rows) if kind in ("group", "thumbnail") and len(rows) > 1 else rows[0]
        frames = None
        if kind == "frames":
            try:
                frames = parse_frames(request.path_params["frames"], wado.frame_total(row))
            except IndexError as exc:
                raise HTTPException(404, f"instance {row['sop_uid']}: {exc}") from None
        several = kind == "instance" or (frames is not None and len(frames) > 1)
        media = negotiate(accept, request.headers.get("accept"), wado.offered_types(wado.frame_total(row), several))
        used = rows if kind == "group" else [row]
        tag = _etag(used, request.url.path, render_request.key(), media, repr(frames))
        if _not_modified(request, tag):
            return Response(status_code=304, headers={"ETag": tag, "Cache-Control": _CACHE})
        job: Callable
        if kind == "group":
            job = lambda: wado.group_image(rows, render_request, media, self.datasets)  # noqa: E731
        elif kind == "thumbnail":
            job = lambda: wado.thumbnail(row, render_request, media, self.datasets)  # noqa: E731
        else:
            job = lambda: wado.instance_image(row, render_request, media, frames, self.datasets)  # noqa: E731
        body, content_type = await self._run(row, job, self.limiter)
        return Response(body, media_type=content_type, headers={"ETag": tag, "Cache-Control": _CACHE})

    async def _run(self, row, job: Callable, limiter=None):
        """``job()`` in a worker thread; a broken file answers 422 (500 for anything unexpected) naming
        the instance, never bringing the server down."""
        uid = row["sop_uid"]
        try:
            return await anyio.to_thread.run_sync(job, limiter=limiter)
        except _BAD_REQUEST:
            raise
        except DicomRenderError as exc:
            raise _Failure(422, f"instance {uid}: {type(exc).__name__}: {exc.detail}", uid) from None
        except Exception as exc:  # pydicom's errors on a broken file, an unreadable file
            raise _Failure(500, f"instance {uid}: {type(exc).__name__}: {exc}", uid) from None


class _Failure(Exception):
    """A render that failed on the file (not the request): answered with the status and the UID."""

    def __init__(self, status: int, detail: str, uid: str):
        super().__init__(detail)
        self.status, self.detail, self.uid = status, detail, uid


def _etag(rows: Sequence, *parts: str) -> str:
    """A strong ETag from the files (path, size, modification time, as they are now) and the request."""
    digest = hashlib.sha256(_VERSION.encode())
    for row in rows:
        try:
            st = os.stat(row["path"])
            stamp = f"{row['path']}\0{st.st_size}\0{st.st_mtime_ns}"
        except OSError:
            stamp = f"{row['path']}\0missing"
        digest.update(stamp.encode("utf-8", "surrogateescape") + b"\1")
    for part in parts:
        digest.update(part.encode("utf-8", "surrogateescape") + b"\2")
    return f'"{digest.hexdigest()[:32]}"'


def _not_modified(request: Request, tag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or tag in tags


def _static(name: str) -> Response:
    data = resources.files("dicomrender.serve").joinpath("static", name).read_bytes()
    return Response(data, media_type=_STATIC[name], headers={"Cache-Control": "no-cache"})


def create_app(index: Index, *, workers: Optional[int] = None, cache_bytes: int = DEFAULT_CACHE_BYTES) -> Starlette:
    """The Starlette application serving ``index`` (QIDO-RS and WADO-RS under ``/dicomweb``, the viewer
    at ``/``).  ``workers``: renders at once (default: the usable cores); ``cache_bytes``: the bound of
    the data sets kept for the next request (:class:`~dicomrender.serve.cache.DatasetCache`; 0: none)."""
    server = Server(index, workers, cache_bytes)

    async def home(request: Request) -> Response:
        return _static("index.html")

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:  # a fixed set of names: no directory listing, no path from the request
            raise HTTPException(404, f"no static file {name[:80]!r}")
        return _static(name)

    async def presets(request: Request) -> Response:
        return JSONResponse([{"name": p.name, "description": p.description} for p in list_presets()])

    def qido_route(level: str):
        async def endpoint(request: Request) -> Response:
            return await server.qido(request, level)
        return endpoint

    def rendered_route(kind: str):
        async def endpoint(request: Request) -> Response:
            return await server.rendered(request, kind)
        return endpoint

    base = "/dicomweb/studies/{study}"
    series = base + "/series/{series}"
    instance = series + "/instances/{instance}"
    routes = [
        Route("/", home),
        Route("/static/{name}", static),
        Route("/api/presets", presets),
        Route("/dicomweb/studies", qido_route("study")),
        Route("/dicomweb/series", qido_route("series")),
        Route("/dicomweb/instances", qido_route("instance")),
        Route(base + "/series", qido_route("series")),
        Route(base + "/instances", qido_route("instance")),
        Route(series + "/instances", qido_route("instance")),
        Route(base + "/metadata", server.metadata),
        Route(series + "/metadata", server.metadata),
        Route(instance + "/metadata", server.metadata),
        Route(base + "/rendered", rendered_route("group")),
        Route(series + "/rendered", rendered_route("group")),
        Route(instance + "/rendered", rendered_route("instance")),
        Route(instance + "/frames/{frames}/rendered", rendered_route("frames")),
        Route(base + "/thumbnail", rendered_route("thumbnail")),
        Route(series + "/thumbnail", rendered_route("thumbnail")),
        Route(instance + "/thumbnail", rendered_route("thumbnail")),
        Route(instance + "/frames/{frames}/thumbnail", rendered_route("thumbnail")),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            return _error(405, "this server is read-only: only GET and HEAD")
        return _error(exc.status_code, str(exc.detail))

    async def bad_request(request: Request, exc: Exception) -> Response:
        detail = exc.detail if isinstance(exc, DicomRenderError) else str(exc)
        return _error(400, detail, attribute=getattr(exc, "attribute", None))

    async def not_acceptable(request: Request, exc: Exception) -> Response:
        return _error(406, str(exc))

    async def failure(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _Failure)
        return _error(exc.status, exc.detail, uid=exc.uid)

    async def internal(request: Request, exc: Exception) -> Response:
        return _error(500, f"{type(exc).__name__}: {exc}")

    handlers: Dict = {HTTPException: http_error, NotAcceptable: not_acceptable, _Failure: failure,
                      Exception: internal}
    handlers.update({error: bad_request for error in _BAD_REQUEST})
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.server = server
    return app

