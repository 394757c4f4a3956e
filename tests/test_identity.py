"""Identity: the ChatKit user comes from the server (cookie, JWT or trusted header), never from the body."""

from __future__ import annotations

import time

import itsdangerous.timed
import jwt
import pytest
from flask import Flask

from chatkit_backend import identity
from chatkit_backend.config import ConfigError
from chatkit_backend.identity import current_user, peek_user, pseudonymise

JWT_SECRET = "jwt-test-secret-at-least-32-bytes-long!"


@pytest.fixture
def probe_app(make_app) -> Flask:
    return _with_probe(make_app())


def _with_probe(app: Flask) -> Flask:
    """Add routes that expose what identity resolves, so each mode can be tested without the upstream."""

    @app.get("/_probe/current")
    def _current():
        return {"user": current_user()}

    @app.get("/_probe/peek")
    def _peek():
        return {"user": peek_user()}

    return app


def _cookie(response, name: str = "chatkit_uid") -> str:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            return header
    raise AssertionError(f"no {name} cookie in {response.headers.getlist('Set-Cookie')}")


def _token(**claims) -> str:
    return jwt.encode({"sub": "alice@example.com", "exp": int(time.time()) + 60, **claims}, JWT_SECRET, "HS256")


# Anonymous


def test_anonymous_first_visit_gets_an_id_in_a_signed_httponly_cookie(probe_app):
    client = probe_app.test_client()
    first = client.get("/_probe/current")
    second = client.get("/_probe/current")
    cookie = _cookie(first)
    assert first.get_json()["user"].startswith("anon_")
    assert second.get_json()["user"] == first.get_json()["user"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Max-Age=2592000" in cookie


def test_anonymous_ids_differ_between_visitors(probe_app):
    one = probe_app.test_client().get("/_probe/current").get_json()["user"]
    two = probe_app.test_client().get("/_probe/current").get_json()["user"]
    assert one != two


def test_tampered_cookie_gets_a_fresh_id_never_the_claimed_one(probe_app):
    client = probe_app.test_client()
    client.set_cookie("chatkit_uid", "anon_victim")
    response = client.get("/_probe/current")
    assert response.get_json()["user"] != "anon_victim"
    assert _cookie(response)


def test_cookie_signed_with_another_key_is_not_accepted(make_app, probe_app):
    other = _with_probe(make_app(SECRET_KEY="another-key"))
    foreign = _cookie(other.test_client().get("/_probe/current")).split(";")[0].split("=", 1)[1]
    client = probe_app.test_client()
    client.set_cookie("chatkit_uid", foreign)
    assert client.get("/_probe/peek").get_json()["user"] is None


def test_peek_user_never_creates_an_identity(probe_app):
    response = probe_app.test_client().get("/_probe/peek")
    assert response.get_json()["user"] is None
    assert not response.headers.getlist("Set-Cookie")


def test_peek_user_sees_an_existing_anonymous_identity(probe_app):
    client = probe_app.test_client()
    user = client.get("/_probe/current").get_json()["user"]
    assert client.get("/_probe/peek").get_json()["user"] == user


def test_samesite_none_forces_secure(make_app):
    app = _with_probe(make_app(CHATKIT_COOKIE_SAMESITE="None"))
    cookie = _cookie(app.test_client().get("/_probe/current"), "__Host-chatkit_uid")
    assert "SameSite=None" in cookie
    assert "Secure" in cookie


def test_cookie_is_secure_over_https_and_in_production_only(make_app):
    app = _with_probe(make_app())
    plain = _cookie(app.test_client().get("/_probe/current"))
    https = _cookie(app.test_client().get("/_probe/current", base_url="https://localhost"))
    production = _with_probe(make_app(CHATKIT_ENV="production"))
    in_production = _cookie(production.test_client().get("/_probe/current"), "__Host-chatkit_uid")
    assert "Secure" not in plain
    assert "Secure" in https
    assert "Secure" in in_production


def test_cookie_max_age_is_configurable(make_app):
    app = _with_probe(make_app(CHATKIT_COOKIE_MAX_AGE="3600"))
    assert "Max-Age=3600" in _cookie(app.test_client().get("/_probe/current"))


def _client_with_cookie_signed_ago(make_app, monkeypatch, seconds: int):
    """(client, user, cookie value): a client holding an identity cookie signed `seconds` ago (max age 1 h)."""
    app = _with_probe(make_app(CHATKIT_COOKIE_MAX_AGE="3600"))
    client = app.test_client()
    user = client.get("/_probe/current").get_json()["user"]  # the raw id: no CHATKIT_USER_ID_HMAC_KEY here
    then = time.time() - seconds
    with monkeypatch.context() as patched:
        patched.setattr(itsdangerous.timed.time, "time", lambda: then)
        old = identity._cookie_serializer(app.config["SETTINGS"]).dumps(user)
    client.set_cookie("chatkit_uid", old)
    return client, user, old


def test_a_cookie_past_half_its_life_is_signed_again_with_the_same_id(make_app, monkeypatch):
    client, user, old = _client_with_cookie_signed_ago(make_app, monkeypatch, 2000)
    response = client.get("/_probe/current")
    assert response.get_json()["user"] == user
    assert _cookie(response).split(";")[0].split("=", 1)[1] != old
    assert "Max-Age=3600" in _cookie(response)
    assert client.get("/_probe/peek").get_json()["user"] == user  # the renewed cookie is accepted


def test_a_young_cookie_is_not_sent_again(make_app, monkeypatch):
    client, user, _ = _client_with_cookie_signed_ago(make_app, monkeypatch, 1000)
    response = client.get("/_probe/current")
    assert response.get_json()["user"] == user
    assert not response.headers.getlist("Set-Cookie")


def test_an_expired_cookie_is_never_renewed(make_app, monkeypatch):
    client, user, _ = _client_with_cookie_signed_ago(make_app, monkeypatch, 4000)
    assert client.get("/_probe/peek").get_json()["user"] is None
    assert client.get("/_probe/current").get_json()["user"] != user


# JWT


@pytest.fixture
def jwt_app(make_app) -> Flask:
    return _with_probe(make_app(CHATKIT_IDENTITY_MODE="jwt", CHATKIT_JWT_SECRET=JWT_SECRET))


def test_jwt_sub_is_the_user(jwt_app):
    response = jwt_app.test_client().get("/_probe/current", headers={"Authorization": f"Bearer {_token()}"})
    assert response.get_json()["user"] == "alice@example.com"


def test_jwt_missing_is_401_unauthorized(jwt_app):
    response = jwt_app.test_client().get("/_probe/current")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_jwt_expired_is_401_saying_so(jwt_app):
    token = _token(exp=int(time.time()) - 10)
    response = jwt_app.test_client().get("/_probe/current", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "expired" in response.get_json()["error"]["message"]


def test_jwt_without_exp_is_401(jwt_app):
    token = jwt.encode({"sub": "alice"}, JWT_SECRET, "HS256")
    response = jwt_app.test_client().get("/_probe/current", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_jwt_with_another_secret_is_401(jwt_app):
    token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, "x" * 40, "HS256")
    response = jwt_app.test_client().get("/_probe/current", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_jwt_issuer_and_audience_are_checked_when_configured(make_app):
    app = _with_probe(
        make_app(
            CHATKIT_IDENTITY_MODE="jwt",
            CHATKIT_JWT_SECRET=JWT_SECRET,
            CHATKIT_JWT_ISSUER="https://id.example.com",
            CHATKIT_JWT_AUDIENCE="chatkit",
        )
    )
    client = app.test_client()
    good = _token(iss="https://id.example.com", aud="chatkit")
    wrong_audience = _token(iss="https://id.example.com", aud="other")
    no_issuer = _token(aud="chatkit")
    assert client.get("/_probe/current", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    assert client.get("/_probe/current", headers={"Authorization": f"Bearer {wrong_audience}"}).status_code == 401
    assert client.get("/_probe/current", headers={"Authorization": f"Bearer {no_issuer}"}).status_code == 401


def test_jwt_rs256_public_key(make_app):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    app = _with_probe(make_app(CHATKIT_IDENTITY_MODE="jwt", CHATKIT_JWT_PUBLIC_KEY=public_pem.decode()))
    token = jwt.encode({"sub": "bob", "exp": int(time.time()) + 60}, private, "RS256")
    response = app.test_client().get("/_probe/current", headers={"Authorization": f"Bearer {token}"})
    assert response.get_json()["user"] == "bob"


@pytest.mark.parametrize("sub", ["nul\x00user", "x" * 256, "line\nbreak", "c1\x85control"])
def test_a_jwt_sub_that_cannot_be_stored_is_401(jwt_app, sub):
    # A NUL or an over-long `sub` once failed the shared group commit of every user's session.
    headers = {"Authorization": f"Bearer {_token(sub=sub)}"}
    client = jwt_app.test_client()
    response = client.get("/_probe/current", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert "'sub'" in response.get_json()["error"]["message"]
    assert client.get("/_probe/peek", headers=headers).get_json()["user"] is None


def test_a_jwt_sub_of_255_characters_is_the_user(jwt_app):
    headers = {"Authorization": f"Bearer {_token(sub='é' * 255)}"}
    assert jwt_app.test_client().get("/_probe/current", headers=headers).get_json()["user"] == "é" * 255


def test_a_bad_jwt_sub_never_reaches_chatkit(make_app, chatkit_config, chatkit_standin):
    app = make_app(chatkit_config, CHATKIT_IDENTITY_MODE="jwt", CHATKIT_JWT_SECRET=JWT_SECRET)
    headers = {"Authorization": f"Bearer {_token(sub='nul' + chr(0))}"}
    response = app.test_client().post("/api/chatkit/session", headers=headers)
    assert response.status_code == 401
    assert chatkit_standin.requests_to("/v1/chatkit/sessions", "POST") == []


def test_jwt_peek_user_is_none_without_a_valid_token(jwt_app):
    response = jwt_app.test_client().get("/_probe/peek", headers={"Authorization": "Bearer not-a-jwt"})
    assert response.status_code == 200
    assert response.get_json()["user"] is None


# Header


def test_header_mode_without_a_trusted_proxy_is_refused_at_start_up(make_app):
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_HOPS"):
        make_app(CHATKIT_IDENTITY_MODE="header")


def test_header_mode_takes_the_proxy_header(make_app):
    app = _with_probe(make_app(CHATKIT_IDENTITY_MODE="header", TRUSTED_PROXY_HOPS="1"))
    response = app.test_client().get("/_probe/current", headers={"X-Forwarded-User": "carol"})
    assert response.get_json()["user"] == "carol"


def test_header_mode_missing_header_is_401(make_app):
    app = _with_probe(make_app(CHATKIT_IDENTITY_MODE="header", TRUSTED_PROXY_HOPS="1", CHATKIT_USER_HEADER="X-User"))
    response = app.test_client().get("/_probe/current", headers={"X-Forwarded-User": "carol"})
    assert response.status_code == 401
    assert "X-User" in response.get_json()["error"]["message"]


# Pseudonymisation


def test_hmac_pseudonymises_the_id_and_the_access_log(make_app, caplog):
    app = _with_probe(
        make_app(CHATKIT_IDENTITY_MODE="header", TRUSTED_PROXY_HOPS="1", CHATKIT_USER_ID_HMAC_KEY="hmac-key")
    )
    response = app.test_client().get("/_probe/current", headers={"X-Forwarded-User": "carol@example.com"})
    user = response.get_json()["user"]
    assert user == pseudonymise(app.config["SETTINGS"], "carol@example.com")
    assert user.startswith("u_")
    assert "carol@example.com" not in user
    assert "carol@example.com" not in caplog.text
    assert any(getattr(r, "user", None) == user for r in caplog.records)


# The cookie's name (finding 14): a sibling subdomain must not be able to plant the identity


def test_a_cookie_planted_from_a_sibling_subdomain_is_not_taken_as_the_identity(make_app):
    app = _with_probe(make_app(CHATKIT_ENV="production"))
    https = "https://localhost"
    attacker = app.test_client().get("/_probe/current", base_url=https)
    planted = attacker.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]
    # evil.example.com can set `chatkit_uid=<the attacker's own signed id>; Domain=example.com`,
    # which the browser then sends to chat.example.com; it can never set a __Host- cookie.
    victim = app.test_client()
    victim.set_cookie("chatkit_uid", planted)
    assert victim.get("/_probe/current", base_url=https).get_json()["user"] != attacker.get_json()["user"]
    cookie = _cookie(attacker, "__Host-chatkit_uid")
    assert "Secure" in cookie
    assert "Path=/" in cookie
    assert "Domain" not in cookie


def test_the_host_prefixed_cookie_is_the_identity_in_production(make_app):
    app = _with_probe(make_app(CHATKIT_ENV="production"))
    https = "https://localhost"
    first = app.test_client().get("/_probe/current", base_url=https)
    value = _cookie(first, "__Host-chatkit_uid").split(";", 1)[0].split("=", 1)[1]
    returning = app.test_client()
    returning.set_cookie("__Host-chatkit_uid", value)
    assert returning.get("/_probe/current", base_url=https).get_json()["user"] == first.get_json()["user"]


def test_over_plain_http_in_development_the_cookie_has_no_prefix_and_a_prefixed_name_is_refused(make_app):
    from chatkit_backend.config import ConfigError, Settings

    plain = _cookie(_with_probe(make_app(CHATKIT_ENV="development")).test_client().get("/_probe/current"))
    assert plain.startswith("chatkit_uid=")
    assert "Secure" not in plain
    with pytest.raises(ConfigError, match="CHATKIT_USER_COOKIE_NAME='__Host-uid'"):
        Settings.from_env({"CHATKIT_ENV": "development", "CHATKIT_USER_COOKIE_NAME": "__Host-uid"})
