"""Flask's signed-cookie sessions, minus the work a request without cookies does not need."""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface


class CookieSessionInterface(SecureCookieSessionInterface):
    """The stock interface, except that a request carrying no Cookie header (the bank's
    callbacks, the constructor API, the Mini App's fetches) gets a fresh empty session
    without building the signer: Flask builds one per request, and on a bank callback that
    was a tenth of the view's own CPU. A view that writes to that session still gets a
    signed cookie: `save_session` builds the signer when there is something to sign.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and "HTTP_COOKIE" not in request.environ:
            return self.session_class()
        return super().open_session(app, request)
