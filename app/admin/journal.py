"""Journal of the admin panel."""

from __future__ import annotations

from app.admin.blueprint import bp  # noqa: F401
