"""In a real browser: the API docs run from the vendored Swagger UI under the CSP, and pages
that used inline scripts still work with them moved to static files."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import live

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The platform with only the demo accounts."""
    from huiqi import demo

    with live.live_server(tmp_path_factory.mktemp("live-sec"), demo.load_accounts) as url:
        yield url


def test_api_docs_render_from_vendored_assets_without_csp_violations(live_server: str) -> None:
    from playwright.sync_api import expect

    with live.chromium() as browser:
        page = browser.new_page()
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        response = page.goto(f"{live_server}/api/v1/docs")
        assert response is not None
        assert "script-src 'self'" in response.headers["content-security-policy"]
        # Swagger UI builds the operation list from the OpenAPI document.
        expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=20_000)
        expect(page.get_by_text("/api/v1/auth/token").first).to_be_visible()
        assert requested and all(url.startswith(live_server) for url in requested), requested
        page.close()
