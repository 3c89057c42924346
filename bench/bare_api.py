"""The baseline of bench/api.py: bare Flask endpoints on the API's paths that read the
request and answer a small flat JSON, served by the same gunicorn command line as Kassa."""

from __future__ import annotations

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/api/v1/payments")
def create():
    request.get_data(cache=False)
    return jsonify(ok=True, payment_id="bare", status="pending", amount="1.00")


@app.get("/api/v1/payments/<payment_id>")
def status(payment_id: str):
    return jsonify(ok=True, payment_id=payment_id, status="pending", amount="1.00")
