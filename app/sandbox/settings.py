"""Configuration of the bank and cash register emulator."""

from __future__ import annotations

from dataclasses import dataclass

#: How long the bank keeps retrying a callback after the first attempt
#: (the bank's callback docs: "for one day").
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
    # ------------------------------------------------------------------ cash registers
    atol_login: str = "v5-online-atol-ru"
    """ATOL Online login the emulated register accepts (ATOL's public v5 test value)."""
    atol_password: str = "zUr0OxfI"  # noqa: S105 - ATOL's published test password
    """Its password."""
    atol_group_code: str = "v5-online-atol-ru_5179"
    """The only KKT group code it serves."""
    fiscal_processing_seconds: float = 3.0
    """How long a receipt stays ``wait`` / IN_PROGRESS before it is fiscalized."""
    atol_token_lifetime_seconds: float = 24 * 3600.0
    """Lifetime of an ATOL token (24 h like ATOL), measured on the sandbox clock."""
