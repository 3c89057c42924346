"""Configuration of the bank emulator."""

from __future__ import annotations

from dataclasses import dataclass

#: How long the bank keeps retrying a callback after the first attempt (sbp.md 1.6: "for one day").
DEFAULT_RETRY_WINDOW_SECONDS = 24 * 3600.0


@dataclass
class SandboxSettings:
    """What the emulated bank knows about the single merchant it serves."""

    merchant_id: str
    """The ``sbpMerchantId`` the sandbox accepts, e.g. ``"MA0000000552"``."""
    secret_key: str
    """The Bearer key it accepts AND the key it signs callbacks with."""
    callback_url: str | None
    """Initial callback URL; changeable via ``POST /api/settings/v1/callback``."""
    base_url: str = "http://127.0.0.1:8081"
    """Its own external base URL, used in ``qrUrl``."""
    callback_retry_delays: tuple[float, ...] = (1, 2, 5, 10, 30, 60, 300, 900, 3600)
    """Seconds between delivery attempts; after the list runs out the last interval is
    repeated until ``callback_retry_window_seconds`` have passed since the first attempt."""
    refund_processing_seconds: float = 2.0
    """Delay of the refund transition IN_PROGRESS -> COMPLETED."""
    default_dynamic_ttl_seconds: int = 3 * 24 * 3600
    """Lifetime of a QRDynamic registered without ``qrExpirationDate``."""
    callback_retry_window_seconds: float = DEFAULT_RETRY_WINDOW_SECONDS
    """Sandbox addition: retries stop this long after the first attempt (1 day like the bank)."""
