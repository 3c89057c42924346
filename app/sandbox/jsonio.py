"""JSON in and out with exact money text.

Incoming bodies are parsed with ``parse_float=Decimal`` so ``101.01`` stays exactly
``101.01``. Outgoing bodies are rendered by :func:`dumps`, which writes an
:class:`Amount` as a bare JSON number with exactly two decimals (``100.00``), the
way the bank does; the standard ``json`` module cannot do that without floats.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import Response

from . import clock
from .money import format_amount


@dataclass(frozen=True)
class Amount:
    """A money value to be rendered as a JSON number like ``101.01``."""

    kopecks: int

    def __str__(self) -> str:
        return format_amount(self.kopecks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def loads(data: bytes | str) -> Any:
    """Parse JSON; floats become Decimal; NaN/Infinity are refused. Raises ValueError."""
    try:
        return json.loads(data, parse_float=Decimal, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def dumps(obj: Any) -> str:
    """Compact JSON preserving dict order; Amount -> ``123.45``, datetime -> ISO string."""
    if isinstance(obj, Amount):
        return format_amount(obj.kopecks)
    if isinstance(obj, dict):
        return (
            "{"
            + ",".join(
                json.dumps(str(key), ensure_ascii=False) + ":" + dumps(value)
                for key, value in obj.items()
            )
            + "}"
        )
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(dumps(item) for item in obj) + "]"
    if isinstance(obj, datetime):
        return json.dumps(clock.iso(obj))
    if obj is None or isinstance(obj, (bool, int, str)):
        return json.dumps(obj, ensure_ascii=False)
    raise TypeError(f"cannot render {type(obj).__name__} as JSON")


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(dumps(obj), status=status, mimetype="application/json")


def error_response(status: int, code: str, message: str) -> Response:
    return json_response({"code": code, "message": message}, status)
