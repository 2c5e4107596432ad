"""Static assets on the wire: gzip-compressed, cached for a year under versioned URLs.

- `url_for('static', filename=...)` gets a `v=<content hash>` query argument, so a changed file gets a new
  URL and a browser may keep every versioned response for a year (`immutable`); an unversioned or stale
  URL is served with `no-cache` (revalidated by ETag).
- Text assets (JavaScript, CSS, SVG, JSON, source maps) go out gzip-compressed to clients that accept it:
  from the `.gz` file next to the asset when scripts/build-assets made one and it is not older than the
  asset, else compressed once in memory and kept (keyed by path, size and modification time).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import mimetypes
import os
from pathlib import Path

from flask import Flask, Response, abort, current_app, request
from werkzeug.security import safe_join

YEAR = 31536000
COMPRESSIBLE = {".js", ".css", ".svg", ".json", ".map", ".txt", ".html", ".xml"}


def init_app(app: Flask) -> None:
    """Replace Flask's static view with the compressing, caching one and version every static URL."""
    app.view_functions["static"] = _serve_static

    @app.url_defaults
    def _version_static_urls(endpoint, values):
        if endpoint == "static" and "filename" in values and "v" not in values:
            digest = content_hash(app.static_folder, values["filename"])
            if digest:
                values["v"] = digest


def _stat_key(path: str) -> tuple[str, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return path, stat.st_size, stat.st_mtime_ns


def content_hash(folder: str, filename: str) -> str | None:
    """The first 12 hex digits of the file's SHA-256, or None when there is no such file."""
    path = safe_join(folder, filename)
    key = _stat_key(path) if path else None
    return _hash(*key) if key else None


@functools.lru_cache(maxsize=512)
def _hash(path: str, _size: int, _mtime: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


@functools.lru_cache(maxsize=128)
def _gzipped(path: str, _size: int, _mtime: int) -> bytes:
    """The gzip body of an asset: its up-to-date precompressed twin, else compressed here (once)."""
    twin = path + ".gz"
    try:
        if os.stat(twin).st_mtime_ns >= _mtime:
            return Path(twin).read_bytes()
    except OSError:
        pass
    return gzip.compress(Path(path).read_bytes(), compresslevel=9, mtime=0)


def gzip_size(folder: str, filename: str) -> int:
    """How many bytes the asset weighs on the wire when gzip-compressed (what the JS budget counts)."""
    path = safe_join(folder, filename)
    key = _stat_key(path) if path else None
    if key is None:
        raise FileNotFoundError(filename)
    return len(_gzipped(*key))


def _serve_static(filename: str):
    folder = current_app.static_folder
    path = safe_join(folder, filename)
    key = _stat_key(path) if path and os.path.isfile(path) else None
    if key is None:
        abort(404)
    digest = _hash(*key)
    mimetype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    compress = (Path(filename).suffix.lower() in COMPRESSIBLE
                and "gzip" in request.accept_encodings and request.accept_encodings["gzip"] > 0)
    body = _gzipped(*key) if compress else Path(path).read_bytes()
    response = Response(body, mimetype=mimetype)
    if compress:
        response.headers["Content-Encoding"] = "gzip"
    if Path(filename).suffix.lower() in COMPRESSIBLE:
        response.vary.add("Accept-Encoding")
    response.set_etag(digest + ("-gz" if compress else ""))
    if request.args.get("v") == digest:
        response.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
    else:
        response.headers["Cache-Control"] = "no-cache"
    return response.make_conditional(request)
