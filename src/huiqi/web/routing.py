"""The domains' routes looked up by the first segment of the path.

An included router is matched route by route, twice per request (once to find the router,
once to pick the route in it), with bookkeeping around each try: a page late in the table (the
funds pages, the inbox) spent between 0.5 and 3 ms of a busy server's time on finding its
handler. The table below holds the same route objects and tries only those whose first path
segment is the request's (or is itself a parameter), in their original order, so precedence
is unchanged. It sits in front of the included routers, which stay for the OpenAPI document and
answer only what the table does not (404s).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fastapi import APIRouter
from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound, get_route_path
from starlette.types import Receive, Scope, Send

_CHOSEN = "huiqi.route"


def flat_routes(routers: Iterable[APIRouter]) -> list[BaseRoute]:
    """Every route of the routers, included routers expanded, in matching order."""
    out: list[BaseRoute] = []
    for router in routers:
        for route in router.routes:
            inner = getattr(route, "original_router", None)
            if isinstance(inner, APIRouter):
                context = getattr(route, "include_context", None)
                # only plain inclusions flatten to the same routes; none of huiqi's adds more
                assert context is None or (not context.prefix and not context.dependencies)
                out.extend(flat_routes([inner]))
            else:
                out.append(route)
    return out


def _first_segment(path: str) -> str:
    """'/notify/inbox' → 'notify'; a segment holding a parameter is '*' (matches any)."""
    segment = path.lstrip("/").split("/", 1)[0]
    return "*" if "{" in segment else segment


class RouteTable(BaseRoute):
    """Routes tried only when the first path segment can match."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        """Index `routes` (kept in order) by the first segment of their path."""
        self.routes = list(routes)
        segments = {_first_segment(getattr(r, "path", "/{any}")) for r in self.routes}
        self._any = [r for r in self.routes if _first_segment(getattr(r, "path", "/{any}")) == "*"]
        self._by_segment = {
            seg: [
                r for r in self.routes if _first_segment(getattr(r, "path", "/{any}")) in (seg, "*")
            ]
            for seg in segments
            if seg != "*"
        }

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """The first full match among the candidates, else the first partial one."""
        segment = get_route_path(scope).lstrip("/").split("/", 1)[0]
        partial: tuple[BaseRoute, Scope] | None = None
        for route in self._by_segment.get(segment, self._any):
            match, child = route.matches(scope)
            if match == Match.FULL:
                return Match.FULL, {**child, _CHOSEN: route}
            if match == Match.PARTIAL and partial is None:
                partial = (route, child)
        if partial is not None:
            return Match.PARTIAL, {**partial[1], _CHOSEN: partial[0]}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the route `matches` chose."""
        route: BaseRoute = scope.pop(_CHOSEN)
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: object) -> URLPath:
        """The URL of a named route (the included routers answer the same)."""
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                continue
        raise NoMatchFound(name, path_params)
