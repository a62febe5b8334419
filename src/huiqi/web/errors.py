"""The one place where errors become responses: domain refusals and invalid request input.

API clients get ``{"error": {"code", "message", "field"}, "detail": …}`` (``detail`` is kept for
clients written before the error object); browsers get the error page in their language.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse, Response

from huiqi.core.errors import DomainError
from huiqi.web.i18n import pick, request_lang

ErrorPage = Callable[[Request, int, str | None], Response]

# Names of request parts that are not fields (FastAPI puts them first in an error's location).
_LOCATIONS = {"body", "query", "path", "form", "header", "cookie"}

# What each kind of pydantic error means, in Chinese and English; {…} take the error's context.
_KINDS: dict[str, tuple[str, str]] = {
    "missing": ("必须填写", "is required"),
    "int_parsing": ("须为整数", "must be a whole number"),
    "int_from_float": ("须为整数", "must be a whole number"),
    "float_parsing": ("须为数字", "must be a number"),
    "decimal_parsing": ("须为数字", "must be a number"),
    "bool_parsing": ("须为是或否", "must be true or false"),
    "date_parsing": ("须为日期(YYYY-MM-DD)", "must be a date (YYYY-MM-DD)"),
    "date_from_datetime_parsing": ("须为日期(YYYY-MM-DD)", "must be a date (YYYY-MM-DD)"),
    "datetime_parsing": ("须为日期时间", "must be a date and time"),
    "greater_than": ("须大于 {gt}", "must be greater than {gt}"),
    "greater_than_equal": ("须不小于 {ge}", "must be at least {ge}"),
    "less_than": ("须小于 {lt}", "must be less than {lt}"),
    "less_than_equal": ("须不大于 {le}", "must be at most {le}"),
    "string_too_short": ("至少 {min_length} 个字符", "needs at least {min_length} characters"),
    "string_too_long": ("最多 {max_length} 个字符", "allows at most {max_length} characters"),
    "too_short": ("至少 {min_length} 项", "needs at least {min_length} items"),
    "too_long": ("最多 {max_length} 项", "allows at most {max_length} items"),
    "string_type": ("须为文本", "must be text"),
    "int_type": ("须为整数", "must be a whole number"),
    "list_type": ("须为列表", "must be a list"),
    "dict_type": ("须为对象", "must be an object"),
    "model_type": ("须为对象", "must be an object"),
    "enum": ("须为以下之一:{expected}", "must be one of: {expected}"),
    "literal_error": ("须为以下之一:{expected}", "must be one of: {expected}"),
    "string_pattern_mismatch": ("格式不符", "has the wrong format"),
    "json_invalid": ("不是有效的 JSON", "is not valid JSON"),
    "extra_forbidden": ("不是可接受的字段", "is not an accepted field"),
}


def _plain(value: Any) -> Any:
    """A JSON-safe copy of a value from an error's context (exceptions and objects become text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return str(value)


def _field_labels(request: Request) -> dict[str, tuple[str, str]]:
    """Labels the route gives its parameters: ``title="中文 / English"`` on Form/Query/Path."""
    route = request.scope.get("route")
    labels: dict[str, tuple[str, str]] = {}
    if not isinstance(route, APIRoute):
        return labels
    dependant = route.dependant
    params = [
        *dependant.path_params,
        *dependant.query_params,
        *dependant.header_params,
        *dependant.cookie_params,
        *dependant.body_params,
    ]
    for param in params:
        title = getattr(param.field_info, "title", None)
        if title:
            zh, _, en = str(title).partition(" / ")
            labels[param.alias] = (zh, en or zh)
    return labels


def _field_name(loc: Sequence[Any]) -> str:
    """The field an error's location points at, without the request part ("body", "query"…)."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:]
    return ".".join(parts)


def describe(
    error: Mapping[str, Any], lang: str, labels: Mapping[str, tuple[str, str]]
) -> tuple[str, str]:
    """The field name and a sentence naming it (by its label) and saying what is allowed."""
    field = _field_name(error.get("loc", ()))
    label = labels.get(field)
    shown = pick(lang, *label) if label else (field or pick(lang, "请求", "the request"))
    kind = str(error.get("type", ""))
    ctx = {k: _plain(v) for k, v in (error.get("ctx") or {}).items()}
    if kind == "value_error":
        # A validator's own words: they already say what is wrong (often in both languages).
        reason = str(ctx.get("error") or error.get("msg", "")).removeprefix("Value error, ")
        return field, f"{shown}:{reason}" if lang == "zh" else f"{shown}: {reason}"
    template = _KINDS.get(kind)
    if template is None:
        return field, pick(lang, f"{shown}:格式不正确", f"{shown}: {error.get('msg', 'invalid')}")
    text = pick(lang, *template)
    try:
        text = text.format(**ctx)
    except (KeyError, IndexError, ValueError):
        text = pick(lang, "格式不正确", str(error.get("msg", "is invalid")))
    return field, f"{shown}{text}" if lang == "zh" else f"{shown} {text}"


def domain_error_response(
    request: Request, exc: DomainError, wants_json: bool, error_page: ErrorPage
) -> Response:
    """The response to a domain refusal, in the user's language."""
    lang = request_lang(request)
    message = exc.localized(lang)
    if exc.problems:
        message += (":" if lang == "zh" else ": ") + "; ".join(exc.problems)
    if wants_json:
        detail = str(exc) + (": " + "; ".join(exc.problems) if exc.problems else "")
        body = {"error": {"code": exc.code, "message": message, "field": exc.field}}
        return JSONResponse(body | {"detail": detail}, status_code=exc.status, headers=exc.headers)
    response = error_page(request, exc.status, message)
    response.headers.update(exc.headers)
    return response


def validation_error_response(
    request: Request, exc: RequestValidationError, wants_json: bool, error_page: ErrorPage
) -> Response:
    """The response to request input that does not fit the route's parameters; never fails."""
    lang = request_lang(request)
    labels = _field_labels(request)
    errors = list(exc.errors())
    described = [describe(e, lang, labels) for e in errors]
    message = (
        ";".join(m for _, m in described) if lang == "zh" else "; ".join(m for _, m in described)
    )
    if wants_json:
        detail = [
            {
                "loc": _plain(list(e.get("loc", ()))),
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
                **({"ctx": _plain(e["ctx"])} if e.get("ctx") else {}),
            }
            for e in errors
        ]
        field = described[0][0] if described else None
        body = {"error": {"code": "invalid", "message": message, "field": field}, "detail": detail}
        return JSONResponse(body, status_code=422)
    return error_page(request, 422, message)
