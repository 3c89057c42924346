"""The cashier's Mini App: the till inside Telegram (bp "miniapp", /miniapp/).

Besides its blueprint it brings two things the whole app benefits from: responses are
compressed (Flask-Compress, gzip) and a static file asked for under a version
(`asset_url`, `?v=<hash of the file>`) may be cached for a year, so the Mini App's first
load stays small and a repeat load fetches only the screens.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from flask import Flask, current_app, request, url_for
from flask_compress import Compress

# A versioned static URL names the file's content: it never changes, so keep it a year.
VERSIONED_MAX_AGE = 365 * 24 * 3600

compress = Compress()


@lru_cache(maxsize=64)
def _file_version(path: str, mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def asset_url(filename: str) -> str:
    """The URL of a static file with its content's hash in it (`?v=`), cached for a year."""
    path = Path(current_app.static_folder) / filename
    return url_for("static", filename=filename, v=_file_version(str(path), path.stat().st_mtime_ns))


def _static_files(response):
    """Static files: buffered (they are small) so that Flask-Compress gzips them whole and
    the file is closed with the response; a versioned URL is cached for a year."""
    if request.endpoint != "static" or response.status_code != 200:
        return response
    response.direct_passthrough = False
    response.make_sequence()
    if request.args.get("v"):
        response.cache_control.public = True
        response.cache_control.max_age = VERSIONED_MAX_AGE
        response.cache_control.immutable = True
        response.cache_control.no_cache = None
    return response


def init_app(app: Flask) -> None:
    """Register the Mini App's blueprint, compression and the long cache of versioned assets."""
    from app.extensions import csrf
    from app.miniapp.views import bp

    # The Mini App is not a cookie session: every request carries `Authorization: tma
    # <initData>` signed by Telegram for our bot (checked on each request), which a forged
    # cross-site form cannot send. A CSRF token would add nothing, so the blueprint is exempt.
    csrf.exempt(bp)
    app.register_blueprint(bp, url_prefix="/miniapp")
    app.config.setdefault("COMPRESS_ALGORITHM", ["gzip"])
    app.config.setdefault("COMPRESS_ALGORITHM_STREAMING", ["gzip"])
    compress.init_app(app)
    app.after_request(_static_files)  # runs before Flask-Compress's (registered earlier)
    app.add_template_global(asset_url, "asset_url")
