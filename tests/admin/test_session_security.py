"""The panel's session against theft and forgery: a login lasts 12 hours however busy the
admin is, the cookie is Secure and __Host- behind https, and every POST of the panel needs
the form's CSRF token."""

from __future__ import annotations

from werkzeug.routing import AnyConverter, IntegerConverter

from app.admin.auth import LOGIN_AT_KEY, SESSION_LIFETIME
from app.models import AdminUser
from tests.admin.accounts_support import csrf_token, is_logged_in, log_in
from tests.admin.conftest import logged_in, make_admin


def _age_login(client, seconds: float) -> None:
    with client.session_transaction() as session:
        session[LOGIN_AT_KEY] -= int(seconds)


def test_a_login_ends_after_twelve_hours_even_while_the_admin_is_busy(app):
    make_admin()
    client = app.test_client()
    assert log_in(client).status_code == 302
    _age_login(client, SESSION_LIFETIME.total_seconds() - 60)
    assert is_logged_in(client)  # 11:59 in, and the request renews the cookie...
    _age_login(client, 120)
    response = client.get("/admin/")
    assert response.status_code == 302  # ...but 12:01 after the login the password is asked
    assert response.headers["Location"].startswith("/admin/login")


def test_a_session_without_its_login_time_is_not_a_login(app):
    user = make_admin()
    client = logged_in(app, user)
    assert is_logged_in(client)
    with client.session_transaction() as session:
        del session[LOGIN_AT_KEY]
    assert not is_logged_in(client)


def test_an_https_site_sets_a_secure_host_only_session_cookie(make_app):
    app = make_app(PUBLIC_URL="https://kassa.example.ru")
    site = "https://kassa.example.ru"
    with app.app_context():
        make_admin()
        client = app.test_client()
        response = log_in(client, base_url=site)
        assert response.status_code == 302
        cookie = response.headers["Set-Cookie"]
        assert cookie.startswith("__Host-session=")
        assert "; Secure" in cookie and "; HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Domain=" not in cookie and "; Path=/" in cookie
        assert client.get("/admin/", base_url=site).status_code == 200


def test_plain_http_development_keeps_a_plain_cookie(app):
    make_admin()
    cookie = log_in(app.test_client()).headers["Set-Cookie"]
    assert cookie.startswith("session=")
    assert "Secure" not in cookie and "HttpOnly" in cookie


def _example_url(app, rule) -> str:
    values = {}
    for name, converter in rule._converters.items():
        if isinstance(converter, IntegerConverter):
            values[name] = 1
        elif isinstance(converter, AnyConverter):
            values[name] = sorted(converter.items)[0]
        else:
            values[name] = "x"
    return app.url_map.bind("localhost").build(rule.endpoint, values, method="POST")


def test_every_post_of_the_panel_needs_the_csrf_token(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    posts = [rule for rule in app.url_map.iter_rules()
             if rule.endpoint.startswith("admin.") and "POST" in rule.methods]
    assert len(posts) > 20
    with app.app_context():
        user = make_admin()
        client = logged_in(app, user)
        refused = {}
        for rule in posts:
            response = client.post(_example_url(app, rule), data={"email": "x@example.com"},
                                   headers={"Accept": "text/html"})
            refused[rule.endpoint] = (response.status_code,
                                      "Обновите страницу" in response.get_data(as_text=True))
        assert {endpoint: result for endpoint, result in refused.items()
                if result != (400, True)} == {}
        # The same admin with the token is let through (a logout, say).
        page = client.get("/admin/").get_data(as_text=True)
        response = client.post("/admin/logout", data={"csrf_token": csrf_token(page)})
        assert response.status_code == 302
        assert AdminUser.query.count() == 1

