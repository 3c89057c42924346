"""A panel page read as its HTML tree (the Mini App tests' parser)."""

from __future__ import annotations

from tests.miniapp.screen import Node, _Parser


def page(response) -> Node:
    assert response.status_code == 200, response.status_code
    parser = _Parser()
    parser.feed(response.get_data(as_text=True))
    return parser.root
