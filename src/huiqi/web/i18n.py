"""Interface language: zh-CN by default, English on request."""

from __future__ import annotations

from starlette.requests import Request

LANG_COOKIE = "huiqi_lang"
LANGUAGES = ("zh", "en")


def request_lang(request: Request) -> str:
    """The language of this request: ?lang=, then the cookie, then Chinese."""
    lang = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "zh"
    return lang if lang in LANGUAGES else "zh"


def pick(lang: str, zh: str, en: str) -> str:
    """Choose the Chinese or English text for a language."""
    return en if lang == "en" else zh
