"""The WSGI entry point for gunicorn (`gunicorn wsgi:app`) and the `flask` command.

A configuration that Kassa refuses (see app/config.py) is reported one line per problem,
without a traceback, and the process exits with status 4: gunicorn's master takes that
status from a worker as "the application failed to load" and stops, rather than starting
workers that fail the same way forever. For `flask` and any other caller it is a failure.
"""

import sys

from app import create_app
from app.config import ConfigError

APP_LOAD_ERROR = 4

try:
    app = create_app()
except ConfigError as exc:
    print(exc, file=sys.stderr)  # noqa: T201 - the operator's one message
    sys.exit(APP_LOAD_ERROR)
