"""Liveness and readiness for the load balancer."""

import sqlalchemy as sa
from flask import Blueprint, jsonify

from app.extensions import begin_read_only, db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(ok=True)


@bp.get("/readyz")
def readyz():
    try:
        begin_read_only()
        db.session.execute(sa.text("SELECT 1"))
    except Exception as exc:
        db.session.rollback()
        return jsonify(ok=False, error="database", message=type(exc).__name__), 503
    return jsonify(ok=True)
