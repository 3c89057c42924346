"""The first load is small: gzip, and static files under a version cached for a year."""

from __future__ import annotations

import gzip
import re

from tests.miniapp.conftest import ANNA, init_data

GZIP = {"Accept-Encoding": "gzip, deflate, br, zstd"}


def test_the_first_load_is_under_100_kb_over_the_wire_and_assets_are_cached(till):
    client = till.test_client()
    shell = client.get("/miniapp/", headers=GZIP)
    assert shell.headers["Content-Encoding"] == "gzip"
    html = gzip.decompress(shell.get_data()).decode()
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert [a.split("?")[0] for a in assets] == [
        "/static/vendor/telegram-web-app-8.0.js", "/static/vendor/htmx-2.0.11.min.js",
        "/static/common/tma.js", "/static/miniapp/miniapp.js", "/static/common/tma.css",
        "/static/miniapp/miniapp.css"]
    assert all(re.search(r"\?v=[0-9a-f]{12}$", a) for a in assets)
    wire = len(shell.get_data())
    for url in assets:
        with client.get(url, headers=GZIP) as response:
            assert response.status_code == 200
            assert response.headers["Content-Encoding"] == "gzip"
            assert "max-age=31536000" in response.headers["Cache-Control"]
            assert "immutable" in response.headers["Cache-Control"]
            body = response.get_data()
        assert gzip.decompress(body)
        wire += len(body)
    catalog = client.get("/miniapp/catalog", headers={
        **GZIP, "Authorization": f"tma {init_data(ANNA)}", "HX-Request": "true"})
    assert catalog.status_code == 200
    wire += len(catalog.get_data())
    assert wire < 100 * 1024, wire


def test_a_static_file_without_a_version_is_not_cached_for_long(till):
    with till.test_client().get("/static/miniapp/miniapp.js") as response:
        assert response.status_code == 200
        assert "immutable" not in response.headers.get("Cache-Control", "")
