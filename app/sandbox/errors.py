"""The bank's error envelope as an exception."""

from __future__ import annotations


class BankError(Exception):
    """Rendered as HTTP ``status`` with body ``{"code": code, "message": message}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def invalid(message: str) -> BankError:
    return BankError(400, "ERROR.INVALID_REQUEST", message)


def not_found(message: str) -> BankError:
    return BankError(404, "ERROR.NOT_FOUND", message)


class NotPayable(Exception):
    """A payment attempt is impossible in the QR's current state.

    ``reason`` is one of EXPIRED, PAID, CANCELLED, INACTIVE (cash link without an open
    order) or AMOUNT_REQUIRED (open-sum static QR paid without a sum).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
