"""Assets on the wire: gzip-compressed, cached for a year under content-hashed URLs, and the JavaScript
budget of the pages (≤ 200 KB compressed on every page a phone user meets; the quality pages carry the
trimmed ECharts build and nothing more)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from flask import url_for
from playwright.sync_api import expect

from tests.web.test_dashboard import Visit, cycle  # noqa: F401 - fixtures reused
from tests.web.test_pages import hall, sign_in, start_swap  # noqa: F401 - the fixture is reused

STATIC = Path(__file__).resolve().parents[2] / "hall" / "web" / "static"
PHONE_BUDGET = 200 * 1024
ECHARTS = "vendor/echarts/echarts.min.js"


@pytest.fixture
def visit(request, screenshots):
    return Visit(screenshots, request.node.name.removeprefix("test_"))


def _static_url(app, filename: str) -> str:
    with app.test_request_context():
        return url_for("static", filename=filename)


def test_versioned_asset_is_gzipped_and_cached_for_a_year(app):
    """A static URL carries the file's content hash; fetched with gzip accepted it comes compressed,
    immutable for a year, and decompresses to the file itself."""
    url = _static_url(app, "js/charts.js")
    assert re.search(r"\?v=[0-9a-f]{12}$", url)
    response = app.test_client().get(url, headers={"Accept-Encoding": "gzip, br"})
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "Accept-Encoding" in response.headers["Vary"]
    assert gzip.decompress(response.data) == (STATIC / "js" / "charts.js").read_bytes()


def test_unversioned_or_stale_asset_is_revalidated_and_plain_without_gzip(app):
    """Without the current hash an asset must be revalidated (no-cache, ETag → 304); a client that does
    not accept gzip gets the plain file."""
    client = app.test_client()
    response = client.get("/static/hall.css?v=000000000000")
    assert response.headers["Cache-Control"] == "no-cache"
    assert "Content-Encoding" not in response.headers
    assert response.data == (STATIC / "hall.css").read_bytes()
    again = client.get("/static/hall.css", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_missing_or_escaping_static_path_is_404(app):
    """An unknown file or a path leaving the static folder is 404."""
    client = app.test_client()
    assert client.get("/static/nope.js").status_code == 404
    assert client.get("/static/../__init__.py").status_code == 404


def test_trimmed_echarts_build_is_small(app):
    """The trimmed ECharts bundle weighs at most 250 KB gzip-compressed (the full build is ~370 KB)."""
    if not (STATIC / ECHARTS).exists():
        pytest.skip("scripts/build-assets has not been run")
    from hall.web.assets import gzip_size

    assert gzip_size(str(STATIC), ECHARTS) <= 250 * 1024


def _script_bytes(page) -> dict[str, int]:
    """The gzip-compressed bytes of every <script src> of the page, by file (what a first visit downloads;
    the browser cache would hide repeated loads from a network count)."""
    from hall.web.assets import gzip_size

    sources = page.eval_on_selector_all("script[src]", "els => els.map(e => e.getAttribute('src'))")
    files = [re.sub(r"\?.*", "", src).removeprefix("/static/") for src in sources]
    assert all(not f.startswith(("http:", "https:", "//")) for f in files), files  # no CDN
    return {f: gzip_size(str(STATIC), f) for f in files}


def test_pages_a_phone_user_meets_load_at_most_200_kb_of_javascript(hall, live_server, phone, visit):  # noqa: F811
    """Home, catalogue, inbox, a task, an instance with its diagram and the messages each load ≤ 200 KB of
    compressed JavaScript."""
    page = phone()
    sign_in(page, live_server, "t1001")
    start_swap(page, live_server, visit)
    task_url = page.url
    page.fill("#f-course", "Python 程序设计")
    page.check("input[name=kind][value=swap]", force=True)
    page.fill("#f-date", "2026-12-01")
    page.fill("#f-hours", "2")
    page.fill("#f-reason", "外出参会")
    page.click("button[value=submit]")
    expect(page.locator("[data-state]")).to_have_attribute("data-state", "running")
    instance_url = page.url
    weights = {}
    for name, url in [("home", "/"), ("services", "/services"), ("tasks", "/tasks"), ("task", task_url),
                      ("instance", instance_url), ("messages", "/messages")]:
        response = page.goto(url if url.startswith("http") else live_server + url)
        if name == "messages" and response.status == 404:
            continue
        weights[name] = sum(_script_bytes(page).values())
        assert weights[name] <= PHONE_BUDGET, f"{name}: {weights[name]} bytes of JavaScript"
    assert weights["instance"] > 0  # the diagram viewer is counted, compressed


def test_quality_pages_carry_only_the_trimmed_echarts(cycle, live_server, desktop):  # noqa: F811
    """The dashboard and a portrait load the trimmed ECharts and the chart script, ≤ 250 KB compressed."""
    page = desktop()
    sign_in(page, live_server, "q4001")
    for url in (f"/quality/cycles/{cycle['cycle_id']}", f"/quality/subjects/{cycle['software']}"):
        page.goto(live_server + url)
        scripts = _script_bytes(page)
        assert sorted(scripts) == ["js/charts.js", ECHARTS]
        assert sum(scripts.values()) <= 250 * 1024
