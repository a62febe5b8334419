"""Static assets: read once, gzip-compressed once, served with immutable versioned URLs.

Pages link to ``static_url("css/app.css")``, i.e. ``/static/css/app.css?v=<content hash>``; a
request carrying the current hash may be cached by browsers and proxies for a year, since a new
release changes the hash and so the URL. Compressed bodies are made at start-up, not per request.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, max-age=0, must-revalidate"
COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")


@dataclass(frozen=True)
class Asset:
    """One file's bytes, its gzip form (when smaller) and its version."""

    body: bytes
    gzipped: bytes | None
    media_type: str
    version: str


# Loaded folders by path, with the (name, size, mtime) of every file they were read from: an
# app built again in the same process (tests build one per test) reuses the compressed bodies
# unless a file changed.
_LOADED: dict[Path, tuple[tuple[tuple[str, int, int], ...], dict[str, Asset]]] = {}


def _load(root: Path) -> dict[str, Asset]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    signature = tuple(
        (p.as_posix(), st.st_size, st.st_mtime_ns) for p in files for st in [p.stat()]
    )
    loaded = _LOADED.get(root)
    if loaded is not None and loaded[0] == signature:
        return dict(loaded[1])
    assets: dict[str, Asset] = {}
    for path in files:
        body = path.read_bytes()
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if media.startswith("text/"):
            media += "; charset=utf-8"
        packed = gzip.compress(body, 9, mtime=0) if media.startswith(COMPRESSIBLE) else None
        assets[path.relative_to(root).as_posix()] = Asset(
            body=body,
            gzipped=packed if packed is not None and len(packed) < len(body) else None,
            media_type=media,
            version=hashlib.sha256(body).hexdigest()[:12],
        )
    _LOADED[root] = (signature, assets)
    return dict(assets)


class StaticAssets:
    """An ASGI app serving a folder from memory, with ETag, gzip and immutable caching."""

    def __init__(self, directory: Path) -> None:
        """Read every file of the folder."""
        self.assets = _load(directory)

    def url(self, name: str) -> str:
        """The versioned URL of an asset (unknown names keep their plain URL)."""
        asset = self.assets.get(name)
        return f"/static/{name}?v={asset.version}" if asset else f"/static/{name}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer GET and HEAD for one asset."""
        if scope["method"] not in ("GET", "HEAD"):
            await PlainTextResponse("method not allowed", 405)(scope, receive, send)
            return
        name = scope["path"].removeprefix(scope.get("root_path", "")).lstrip("/")
        name = name.removeprefix("static/")
        asset = self.assets.get(name)
        if asset is None:
            await PlainTextResponse("not found", 404)(scope, receive, send)
            return
        headers = Headers(scope=scope)
        query = scope.get("query_string", b"").decode("latin-1")
        etag = f'"{asset.version}"'
        common = {
            "ETag": etag,
            "Cache-Control": IMMUTABLE if f"v={asset.version}" in query else REVALIDATE,
            "Vary": "Accept-Encoding",
        }
        if etag in [t.strip() for t in headers.get("if-none-match", "").split(",")]:
            await Response(status_code=304, headers=common)(scope, receive, send)
            return
        body = asset.body
        if asset.gzipped is not None and "gzip" in headers.get("accept-encoding", ""):
            body, common["Content-Encoding"] = asset.gzipped, "gzip"
        response = Response(body, media_type=asset.media_type, headers=common)
        if scope["method"] == "HEAD":
            response.body = b""
            response.headers["content-length"] = str(len(body))
        await response(scope, receive, send)
