"""The cash register interface: what fiscalization needs from any cloud register.

Like the SBP providers (app/sbp/provider.py), a register client takes plain values in its
constructor, returns the plain types of app/fiscal/receipt.py and raises ProviderError
(app/httpclient.py); it knows nothing of Flask or the database.
"""

from __future__ import annotations

from typing import Protocol

from app.fiscal.receipt import ReceiptDraft, RegisterResult


class FiscalProvider(Protocol):
    """A cloud cash register (ATOL Online and its clones, the Raiffeisen fiscal API...).

    Every method may raise ProviderError; ``retryable=True`` means the same call may
    succeed later (network error, timeout, 5xx); anything else is a refusal.
    """

    name: str
    #: The provider as shop owners know it, for messages (Russian).
    title: str
    #: What the provider documents for a receipt line (our names, app/fiscal/receipt.py):
    #: a product or a cart line with anything else is refused before it reaches a receipt.
    vat_rates: frozenset[str]
    measures: frozenset[str]
    payment_objects: frozenset[str]

    def register(
        self, draft: ReceiptDraft, *, external_id: str, callback_url: str | None
    ) -> RegisterResult:
        """Send one receipt. Safe to repeat with the same ``external_id``: the register
        answers with the document it already has instead of printing a second receipt.

        :returns: WAIT (accepted, ``provider_id`` set), DONE, or FAIL when the register
            refused the document (``error`` says why; no document exists at the register,
            so the caller decides whether to fix it and send it under a new external_id).
        """
        ...

    def status(
        self, *, external_id: str, provider_id: str | None, operation: str
    ) -> RegisterResult:
        """Ask the register about a document sent by :meth:`register`.

        ``operation`` is the draft's SELL or SELL_REFUND (some registers key by it).
        """
        ...

    def parse_callback(self, raw_body: bytes) -> RegisterResult:
        """Read a callback the register POSTed to us.

        :raises ProviderError: code "bad_payload" for a body that is not a callback,
            "not_supported" when the register sends no callbacks at all.
        """
        ...


def undocumented(provider: FiscalProvider, *, vat: str, payment_object: str,
                 measure: str) -> tuple[str, str] | None:
    """The first (field, value) of a line that ``provider`` does not document, or None."""
    for what, value, known in (("vat", vat, provider.vat_rates),
                                ("payment_object", payment_object, provider.payment_objects),
                                ("measure", measure, provider.measures)):
        if value not in known:
            return what, value
    return None
