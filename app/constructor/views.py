"""Routes of /api/v1 (thin: parse, authenticate, call the payment services, answer flat JSON)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("constructor", __name__)
