"""Static assets: versioned URLs in pages, gzip, ETag and immutable caching."""

from __future__ import annotations

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from huiqi.web.app import STATIC_DIR


def test_pages_link_versioned_assets_that_are_immutable(client: TestClient) -> None:
    soup = BeautifulSoup(client.get("/login").text, "lxml")
    link = soup.find("link", rel="stylesheet")
    assert link is not None
    href = str(link["href"])
    assert href.startswith("/static/css/app.css?v=")
    r = client.get(href)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.content == (STATIC_DIR / "css" / "app.css").read_bytes()
    # an unversioned (or outdated) URL must be revalidated
    assert "immutable" not in client.get("/static/css/app.css").headers["cache-control"]


def test_assets_are_gzipped_and_revalidated(client: TestClient) -> None:
    raw = client.get("/static/vendor/htmx.min.js", headers={"Accept-Encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.content == (STATIC_DIR / "vendor" / "htmx.min.js").read_bytes()  # decoded by httpx
    assert int(raw.headers["content-length"]) < len(raw.content) // 2
    again = client.get("/static/vendor/htmx.min.js", headers={"If-None-Match": raw.headers["etag"]})
    assert again.status_code == 304
    plain = client.get("/static/vendor/htmx.min.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert client.get("/static/nope.js").status_code == 404
