"""nginx for real, in front of gunicorn, with deploy/nginx.conf."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.servers import gunicorn, nginx

pytestmark = pytest.mark.slow


def call(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """gunicorn (TRUSTED_PROXY_HOPS=1) behind nginx; yields (nginx_url, app_url)."""
    workdir = tmp_path_factory.mktemp("nginx-stack")
    env = {
        "SECRET_KEY": "nginx-test-secret",
        "DATABASE_URL": f"sqlite:///{workdir / 'app.sqlite3'}",
        "TRUSTED_PROXY_HOPS": "1",
        "MAX_CONTENT_LENGTH": "65536",
    }
    with gunicorn(env, workdir / "gunicorn.log") as app_url, nginx(app_url, workdir / "nginx") as proxy_url:
        yield proxy_url, app_url


def test_health_answers_through_nginx(stack):
    proxy_url, _ = stack
    status, _, body = call(proxy_url + "/health")
    assert (status, body) == (200, {"status": "healthy"})


def test_nginx_refuses_bodies_over_its_limit_with_the_json_contract(stack):
    proxy_url, _ = stack
    status, headers, body = call(
        proxy_url + "/api/errors", data=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/json"}
    )
    assert status == 413
    assert headers["Content-Type"].startswith("application/json")
    assert body["error"]["code"] == "payload_too_large"
