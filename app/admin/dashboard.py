"""Dashboard of the admin panel: the shop at a glance."""

from __future__ import annotations

from flask import render_template

from app.admin.auth import viewer_required
from app.admin.blueprint import bp


@bp.get("/")
@viewer_required
def index():
    return render_template("admin/dashboard.html")
