"""The baseline: a bare Flask endpoint that reads the callback body and answers 200 JSON.

Served by the same gunicorn command line as Kassa (bench/callbacks.py), so the ratio of the
two throughputs is what Kassa's own work costs: signature, database, outbox.
"""

from __future__ import annotations

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/sbp/callback")
def callback():
    request.get_data(cache=False)
    return jsonify(ok=True, outcome="bare")
