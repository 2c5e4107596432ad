"""Fixtures of the sign-on tests: the hall served over real HTTP on loopback, a django-cas-server CAS
server and two npm oidc-provider instances as subprocesses, and a small browser (requests + form parsing)."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE = 60.0


def _start(cmd: list[str], env: dict, name: str) -> tuple[subprocess.Popen, int]:
    """Start a server that prints its port on the first line of stdout; wait for it, bounded."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if ready:
            line = proc.stdout.readline().strip()
            if line.isdigit():
                return proc, int(line)
            if proc.poll() is not None:
                break
    proc.kill()
    raise RuntimeError(f"{name} did not start: {proc.stderr.read()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def hall_url(app):
    """The hall served by a threaded werkzeug server on a free loopback port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def cas_server(tmp_path_factory):
    """A django-cas-server on loopback; yields its CAS base URL (…/cas)."""
    folder = tmp_path_factory.mktemp("cas")
    proc, port = _start([sys.executable, "-m", "tests.identity.cas_main"], {"HALL_TEST_CAS_DIR": str(folder)},
                        "CAS server")
    yield f"http://127.0.0.1:{port}/cas"
    _stop(proc)


def _oidc_provider(hall_url: str) -> tuple[subprocess.Popen, str]:
    proc, port = _start(["node", str(ROOT / "tests/identity/oidc_provider.mjs")],
                        {"HALL_TEST_REDIRECT_URI": f"{hall_url}/sso/oidc/callback",
                         "HALL_TEST_POST_LOGOUT_URI": f"{hall_url}/login"}, "OIDC provider")
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def oidc_issuers(hall_url):
    """Two independent oidc-provider instances (own issuer, own keys), both knowing the hall as client."""
    first, first_url = _oidc_provider(hall_url)
    second, second_url = _oidc_provider(hall_url)
    yield first_url, second_url
    _stop(first)
    _stop(second)


@pytest.fixture
def org_units(app, ctx):
    """The units sign-on maps departments to: the college and its department xxgc."""
    from hall.accounts import services as accounts
    from hall.extensions import db
    from hall.org import services as org

    accounts.ensure_roles()
    college = org.create_unit("college", "示范职业技术学院", "college", None)
    unit = org.create_unit("xxgc", "信息工程学院", "department", college)
    db.session.commit()
    return unit


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action") or "", "fields": {}})
        elif tag == "input" and self.forms and attrs.get("name") and attrs.get("type") != "checkbox":
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value") or ""


class Browser:
    """A person's browser: a cookie jar, redirects followed step by step, forms filled in and sent."""

    def __init__(self):
        self.http = requests.Session()

    def get(self, url, **kw):
        return self.http.get(url, allow_redirects=False, timeout=30, **kw)

    def post(self, url, **kw):
        return self.http.post(url, allow_redirects=False, timeout=30, **kw)

    def follow(self, response, stop_prefix: str | None = None, limit: int = 15):
        """Follow redirects until a page, or until the next location starts with *stop_prefix*; returns
        the last response (its Location is the stopped-at URL)."""
        for _ in range(limit):
            if response.status_code not in (301, 302, 303, 307, 308):
                return response
            location = urljoin(response.url, response.headers["Location"])
            if stop_prefix and location.startswith(stop_prefix):
                return response
            response = self.get(location)
        raise AssertionError("too many redirects")

    def submit(self, page, **values):
        """Send the page's first form with *values* filled in."""
        parser = _Forms()
        parser.feed(page.text)
        assert parser.forms, page.text[:500]
        form = parser.forms[0]
        return self.post(urljoin(page.url, form["action"] or page.url), data={**form["fields"], **values})

    def csrf(self, url: str) -> str:
        match = re.search(r'name="_csrf" value="([^"]+)"', self.get(url).text)
        assert match, "no CSRF token on the page"
        return match.group(1)

    def me(self, hall_url: str):
        return self.get(f"{hall_url}/api/v1/me", headers={"Accept": "application/json"})


@pytest.fixture
def browser():
    return Browser()


@pytest.fixture
def make_browser():
    return Browser
