"""Every page each demo role can reach, rendered in the Chinese view: none fails, and none shows
English validator phrases, internal field names, code values or JSON to the reader."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from huiqi.enterprise.catalogue import catalogue
from tests import live
from tests.conftest import csrf_from

MAX_PAGES = 70
SKIP = re.compile(
    r"^/(logout|lang/|static/|api/|healthz)|\.(csv|xlsx|json|pdf|docx)$|/unsubscribe/|/open/"
)
PHRASES = re.compile(
    r"Input should|[Ff]ield required|not a number|value is not a valid|should have at least"
    r"|String should|Traceback|Internal Server Error|None\b"
)
CODES = re.compile(
    r"\b(auto_grant|no_bank_account|stale_data|self_reported|pending|approved|rejected|disbursed"
    r"|submitted|declined|withdrawn|login\.\w+|user\.\w+|token\.\w+)\b"
)
JSON_BLOB = re.compile(r'\{"\w+":')
FIELDS = re.compile(
    r"\b("
    + "|".join(re.escape(f.name) for f in catalogue().fields.values() if "_" in f.name)
    + r"|employees|revenue)\b"
)
DEMO = {
    "admin": "huiqi-admin-2020",
    "officer": "huiqi-officer-2020",
    "officer-hr": "huiqi-officer-2020",
    "reviewer-county": "huiqi-officer-2020",
    "expert": "huiqi-officer-2020",
    "enterprise": "huiqi-enterprise-2020",
    "bank": "huiqi-bank-2020",
}


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The platform on a copy of the demo (a small population) in its own SQLite file."""
    from huiqi.core import db, migrate
    from huiqi.core.config import Settings
    from huiqi.web.app import create_app

    data_dir: Path = tmp_path_factory.mktemp("every-page")
    settings = Settings(env="test", data_dir=data_dir, secret_key="every-page-secret-0123456789")
    live.copy_demo(data_dir, 200)
    migrate.upgrade(settings.effective_database_url)
    db.configure(db.make_engine(settings.effective_database_url))
    yield create_app(settings, configure_db=False)


def visible_text(html: str) -> str:
    """What a reader sees: no code listings, form sources, English-language links or scripts."""
    soup = BeautifulSoup(html, "lxml")
    for tag in soup.select("script, style, pre, code, textarea, .code, [lang=en], [hidden]"):
        tag.decompose()
    main = soup.find("main")
    return main.get_text(" ", strip=True) if main else ""


def crawl(client: TestClient) -> Iterator[tuple[str, int, str]]:
    """Breadth-first over same-site links from the home page: (path, status, html)."""
    seen: set[str] = set()
    queue = deque(["/"])
    while queue and len(seen) < MAX_PAGES:
        path = queue.popleft()
        if path in seen:
            continue
        seen.add(path)
        r = client.get(path)
        yield path, r.status_code, r.text
        if "text/html" not in r.headers.get("content-type", ""):
            continue
        for a in BeautifulSoup(r.text, "lxml").find_all("a", href=True):
            href = urljoin(path, str(a["href"]))
            parts = urlsplit(href)
            if parts.netloc or not parts.path.startswith("/"):
                continue
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            if not SKIP.search(parts.path) and target not in seen:
                queue.append(target)


@pytest.mark.parametrize("username", sorted(DEMO))
def test_every_page_reads_in_chinese(demo_app: object, username: str) -> None:
    problems: list[str] = []
    with TestClient(
        demo_app, base_url="https://testserver", raise_server_exceptions=False
    ) as client:  # type: ignore[arg-type]
        token = csrf_from(client)
        r = client.post(
            "/login",
            data={"username": username, "password": DEMO[username], "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 303
        pages = 0
        for path, status, html in crawl(client):
            pages += 1
            if status >= 500:
                problems.append(f"{path}: HTTP {status}")
                continue
            text = visible_text(html)
            for name, pattern in (
                ("validator phrase", PHRASES),
                ("code value", CODES),
                ("JSON", JSON_BLOB),
                ("field name", FIELDS),
            ):
                found = pattern.search(text)
                if found:
                    start = max(0, found.start() - 30)
                    problems.append(
                        f"{path}: {name} {found.group(0)!r} in …{text[start : found.end() + 30]}…"
                    )
        assert pages > 5
    assert not problems, "\n".join(problems)
