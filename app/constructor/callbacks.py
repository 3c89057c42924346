"""Calling API clients back when their payments are paid, expire or are refunded: one job
per event and client, with retries, each attempt kept in the delivery log."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Subscribe the callback jobs to the payment events."""
