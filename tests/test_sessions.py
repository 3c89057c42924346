"""Sessions: a request without cookies skips the signer, and sessions still work end to end."""

from __future__ import annotations

from flask import session

from app.sessions import CookieSessionInterface


def _app_with_counter(make_app):
    app = make_app()

    @app.post("/test/visit")
    def visit():
        session["visits"] = session.get("visits", 0) + 1
        return {"visits": session["visits"]}

    @app.get("/test/peek")
    def peek():
        return {"visits": session.get("visits")}

    return app


def test_a_session_written_without_a_cookie_is_signed_and_read_back(make_app):
    app = _app_with_counter(make_app)
    assert isinstance(app.session_interface, CookieSessionInterface)
    client = app.test_client()

    first = client.post("/test/visit")
    assert first.json == {"visits": 1}
    cookie = client.get_cookie("session")
    assert cookie is not None and "." in cookie.value  # itsdangerous: payload.time.signature
    assert client.post("/test/visit").json == {"visits": 2}
    assert client.get("/test/peek").json == {"visits": 2}


def test_a_tampered_session_cookie_is_an_empty_session(make_app):
    app = _app_with_counter(make_app)
    client = app.test_client()
    client.post("/test/visit")
    value = client.get_cookie("session").value
    client.set_cookie("session", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert client.get("/test/peek").json == {"visits": None}


def test_a_cookieless_request_that_reads_the_session_sets_no_cookie(make_app):
    """The bank's callbacks carry no cookies; nothing is signed or sent back for them."""
    app = _app_with_counter(make_app)
    client = app.test_client(use_cookies=False)
    response = client.get("/test/peek")
    assert response.json == {"visits": None}
    assert "Set-Cookie" not in response.headers


def test_a_cookieless_request_never_builds_the_signer(make_app, monkeypatch):
    app = _app_with_counter(make_app)
    built = []
    original = CookieSessionInterface.get_signing_serializer

    def counting(self, app_):
        built.append(1)
        return original(self, app_)

    monkeypatch.setattr(CookieSessionInterface, "get_signing_serializer", counting)
    client = app.test_client(use_cookies=False)
    client.get("/test/peek")
    assert built == []
    client.post("/test/visit")  # writes: the signer is built to sign the new cookie
    assert built == [1]
