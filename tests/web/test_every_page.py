"""Every page each demo role can reach, rendered in the Chinese view: none fails, and none shows
English validator phrases, internal field names, code values or JSON to the reader; every form on
those pages, submitted empty and with bad values, answers with a Chinese message of the same kind."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from huiqi.enterprise.catalogue import catalogue
from tests import live
from tests.conftest import csrf_from

pytestmark = pytest.mark.slow
MAX_PAGES = 200
PER_KIND = 2
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
def demo_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, object]:
    """The platform with the demo loaded (a small population) on its own SQLite file."""
    return _demo(tmp_path_factory)


@pytest.fixture(scope="module")
def form_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, object]:
    """Another demo platform for provoking forms: what a form changes stays out of the page test."""
    return _demo(tmp_path_factory)


@pytest.fixture
def demo_app(demo_world: tuple[object, object]) -> object:
    """The demo platform, its database the one in use."""
    return _use(demo_world)


@pytest.fixture
def form_app(form_world: tuple[object, object]) -> object:
    """The platform forms are provoked on, its database the one in use."""
    return _use(form_world)


def _use(world: tuple[object, object]) -> object:
    from huiqi.core import db

    app, engine = world
    db.configure(engine)  # type: ignore[arg-type]
    return app


def _demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, object]:
    """The platform on a copy of the demo (a small population) in its own SQLite file."""
    return live.demo_app(tmp_path_factory.mktemp("every-page"), "every-page-secret-0123456789")


def visible_text(soup: BeautifulSoup) -> str:
    """What a reader sees: no code listings, form sources, English-language links or scripts
    (they are removed from `soup`)."""
    for tag in soup.select("script, style, pre, code, textarea, .code, [lang=en], [hidden]"):
        tag.decompose()
    main = soup.find("main")
    return main.get_text(" ", strip=True) if main else ""


def page_kind(path: str) -> str:
    """Pages of one kind share a template: path segments holding ids, codes or names become N."""
    parts = urlsplit(path).path.split("/")
    return "/".join("N" if re.search(r"\d|%", p) else p for p in parts)


def crawl(client: TestClient) -> Iterator[tuple[str, int, str, BeautifulSoup]]:
    """Breadth-first over same-site links from the home page: (path, status, html, parsed html);
    at most PER_KIND pages of each kind, so every kind of page is reached within MAX_PAGES.
    The links are read before the page is handed out, so its reader may change the parsed copy."""
    seen: set[str] = set()
    kinds: dict[str, int] = {}
    queue = deque(["/"])
    while queue and len(seen) < MAX_PAGES:
        path = queue.popleft()
        kind = page_kind(path)
        if path in seen or kinds.get(kind, 0) >= PER_KIND:
            continue
        seen.add(path)
        kinds[kind] = kinds.get(kind, 0) + 1
        r = client.get(path)
        soup = BeautifulSoup(r.text, "lxml")
        links: list[str] = []
        if "text/html" in r.headers.get("content-type", ""):
            for a in soup.find_all("a", href=True):
                href = urljoin(path, str(a["href"]))
                parts = urlsplit(href)
                if parts.netloc or not parts.path.startswith("/"):
                    continue
                if not SKIP.search(parts.path):
                    links.append(parts.path + (f"?{parts.query}" if parts.query else ""))
        yield path, r.status_code, r.text, soup
        queue.extend(target for target in links if target not in seen)


ENGLISH_WORDS = re.compile(r"[A-Za-z][a-z']*(?:[ ,:;()-]+[A-Za-z][a-z']*){3,}")
MESSAGES = "[role=alert], .alert, .error, .errors, #errors, .flash"


def message_problems(where: str, soup: BeautifulSoup) -> list[str]:
    """Error and status messages in the Chinese view that are written in English (code listings,
    hidden and English-language parts are removed from `soup` first)."""
    for tag in soup.select("[lang=en], [hidden], code, pre"):
        tag.decompose()
    out = []
    for box in soup.select(MESSAGES):
        text = box.get_text(" ", strip=True)
        found = ENGLISH_WORDS.search(text)
        if found:
            out.append(f"{where}: English message {found.group(0)!r} in {text[:120]!r}")
    return out


def reading_problems(where: str, soup: BeautifulSoup) -> list[str]:
    """What a Chinese reader should not see on a page: validator English, codes, JSON, field
    names, messages in English. The parsed page is used up: the messages are read first, as they
    lose fewer parts (a subset of what the visible text loses)."""
    problems = message_problems(where, soup)
    text = visible_text(soup)
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
                f"{where}: {name} {found.group(0)!r} in …{text[start : found.end() + 30]}…"
            )
    return problems


def _login(client: TestClient, username: str) -> None:
    token = csrf_from(client)
    r = client.post(
        "/login",
        data={"username": username, "password": DEMO[username], "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303


@pytest.mark.parametrize("username", sorted(DEMO))
def test_every_page_reads_in_chinese(demo_app: object, username: str) -> None:
    problems: list[str] = []
    with TestClient(
        demo_app, base_url="https://testserver", raise_server_exceptions=False
    ) as client:  # type: ignore[arg-type]
        _login(client, username)
        pages = 0
        for path, status, _html, soup in crawl(client):
            pages += 1
            if status >= 500:
                problems.append(f"{path}: HTTP {status}")
                continue
            problems += reading_problems(path, soup)
        assert pages > 5
    assert not problems, "\n".join(problems)


# Forms not to provoke: they end the session or switch the language of the rest of the crawl.
FORM_SKIP = re.compile(r"^/(logout|lang/|login)")
BAD_VALUES = {
    "number": "x",
    "date": "2024-13-45",
    "email": "not-an-e-mail",
    "url": "javascript:alert(1)",
    "tel": "phone",
    "month": "2024-99",
}


@dataclass
class Form:
    """A form found on a page: where it goes and its fields as (name, type, value)."""

    page: str
    method: str
    action: str
    fields: list[tuple[str, str, str]]

    def key(self) -> tuple[str, str, tuple[str, ...]]:
        """Forms of the same kind (same action shape and fields) are provoked once."""
        shape = re.sub(r"/\d+", "/N", self.action)
        return self.method, shape, tuple(sorted(n for n, _t, _v in self.fields))

    def variant(self, bad: bool) -> tuple[dict[str, str], dict[str, tuple[str, bytes, str]]]:
        """Data and files of one submission: every field emptied, or given a wrong value."""
        data: dict[str, str] = {}
        files: dict[str, tuple[str, bytes, str]] = {}
        for name, kind, value in self.fields:
            if kind == "hidden":
                data[name] = value
            elif kind == "file":
                files[name] = ("bad.txt", b"\x00\x01 not a document" if bad else b"", "text/plain")
            elif kind in ("checkbox", "radio", "submit"):
                if kind == "submit" and value:
                    data.setdefault(name, value)
            elif bad:
                data[name] = BAD_VALUES.get(kind, "x" * 3 if kind != "select" else "no-such-choice")
            else:
                data[name] = ""
        return data, files


def forms_of(path: str, soup: BeautifulSoup) -> list[Form]:
    """The forms of a (parsed) page that can be provoked."""
    out = []
    for form in soup.find_all("form"):
        action = urljoin(path, str(form.get("action") or path))
        parts = urlsplit(action)
        if parts.netloc or FORM_SKIP.search(parts.path) or SKIP.search(parts.path):
            continue
        fields: list[tuple[str, str, str]] = []
        for el in form.find_all(["input", "select", "textarea", "button"]):
            name = el.get("name")
            if not name:
                continue
            if el.name == "input":
                kind = str(el.get("type") or "text").lower()
            elif el.name == "button":
                kind = "submit"
            else:
                kind = el.name
            fields.append((str(name), kind, str(el.get("value") or "")))
        method = str(form.get("method") or "get").lower()
        out.append(
            Form(path, method, parts.path + (f"?{parts.query}" if parts.query else ""), fields)
        )
    return out


@pytest.mark.parametrize("username", sorted(DEMO))
def test_every_form_refuses_bad_input_in_chinese(form_app: object, username: str) -> None:
    problems: list[str] = []
    with TestClient(
        form_app, base_url="https://testserver", raise_server_exceptions=False
    ) as client:  # type: ignore[arg-type]
        _login(client, username)
        forms: dict[tuple[str, str, tuple[str, ...]], Form] = {}
        for path, status, html, soup in crawl(client):
            if status < 400 and "<form" in html:
                for form in forms_of(path, soup):
                    forms.setdefault(form.key(), form)
        assert forms
        for form in forms.values():
            for bad in (False, True):
                data, files = form.variant(bad)
                where = f"{form.method.upper()} {form.action} from {form.page} ({'bad' if bad else 'empty'})"
                if form.method == "get":
                    r = client.get(form.action.split("?")[0], params=data)
                else:
                    r = client.post(
                        form.action, data=data, files=files or None, follow_redirects=True
                    )
                if r.status_code >= 500:
                    problems.append(f"{where}: HTTP {r.status_code}")
                elif "text/html" in r.headers.get("content-type", ""):
                    problems += reading_problems(where, BeautifulSoup(r.text, "lxml"))
    assert not problems, "\n".join(problems)
