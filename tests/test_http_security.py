"""Proxy trust, CORS and security headers."""

from __future__ import annotations

from flask import Blueprint, request


def with_address_probe(app):
    bp = Blueprint("address_probe", __name__)

    @bp.get("/probe/address")
    def address():
        return {"remote_addr": request.remote_addr, "scheme": request.scheme}

    app.register_blueprint(bp)
    return app


def test_without_trusted_hops_a_client_cannot_choose_its_address(make_app):
    client = with_address_probe(make_app()).test_client()
    body = client.get(
        "/probe/address",
        headers={"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"},
        environ_base={"REMOTE_ADDR": "10.1.1.1"},
    ).get_json()
    assert body == {"remote_addr": "10.1.1.1", "scheme": "http"}


def test_with_one_hop_the_right_most_forwarded_address_is_the_client(make_app):
    client = with_address_probe(make_app(TRUSTED_PROXY_HOPS="1")).test_client()
    body = client.get(
        "/probe/address",
        headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9", "X-Forwarded-Proto": "https"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    ).get_json()
    assert body == {"remote_addr": "203.0.113.9", "scheme": "https"}


def test_cors_is_off_by_default(client):
    response = client.get("/health", headers={"Origin": "https://app.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_allows_listed_origins_with_credentials(make_app):
    client = make_app(CORS_ORIGINS="https://app.example").test_client()
    response = client.options(
        "/api/chatkit/session",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"


def test_cors_ignores_unlisted_origins(make_app):
    client = make_app(CORS_ORIGINS="https://app.example").test_client()
    response = client.options(
        "/api/chatkit/session",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in response.headers


def test_every_response_carries_nosniff_and_referrer_policy(client):
    for response in (client.get("/health"), client.get("/missing")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_hsts_only_on_https(make_app):
    client = make_app(TRUSTED_PROXY_HOPS="1").test_client()
    plain = client.get("/health")
    secure = client.get("/health", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in plain.headers
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")
