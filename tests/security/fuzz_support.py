"""What the fuzz tests share: how many examples to run (FUZZ_EXAMPLES for a longer
campaign), the hypothesis settings that keep a run the same every time, and the row count
that must not move when a request is refused."""

from __future__ import annotations

import os

import sqlalchemy as sa
from hypothesis import HealthCheck, settings

from app.extensions import db
from app.models import BankEvent, Job, Order, Payment, Product, QrCode, Receipt

# Examples per operation or endpoint; FUZZ_EXAMPLES=5000 for a long campaign.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
# derandomize: the same examples on every run (a failure is reproduced by running again);
# no example database, no deadline (a 2-core CI box is slow), no health check that would
# refuse our deliberately slow, filtered strategies.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck), print_blob=True)
WRITTEN = (Order, Payment, QrCode, Job, BankEvent, Receipt, Product)


def row_counts(app) -> dict[str, int]:
    """Rows of the tables a sale writes to: nothing may move on a refused request."""
    with app.app_context():
        counts = {model.__tablename__: db.session.scalar(
            sa.select(sa.func.count()).select_from(model)) for model in WRITTEN}
        db.session.remove()
    return counts
