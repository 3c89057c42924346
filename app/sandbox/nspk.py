"""QRC ids and NSPK payload links (https://qr.nspk.ru/...)."""

from __future__ import annotations

import secrets
import string

#: NSPK member id of Raiffeisenbank.
RAIFFEISEN_BANK_ID = "100000000007"

_ALPHABET = string.ascii_uppercase + string.digits


def new_qr_id(qr_type: str) -> str:
    """32 uppercase alphanumerics: ``AD...`` for QRDynamic, ``AS...`` for QRStatic/QRVariable."""
    prefix = "AD" if qr_type == "QRDynamic" else "AS"
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(30))


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def build_payload(qr_id: str, qr_type: str, amount_kopecks: int | None) -> str:
    """The link a payer's bank app opens.

    ``type=02`` for dynamic, ``type=01`` for static and variable; ``sum`` (kopecks) and
    ``cur`` only when the QR has a fixed sum. The real ``crc`` algorithm is undocumented
    (NSPK does not publish it); the sandbox uses CRC-16/CCITT-FALSE of the text before ``&crc=``
    so the value is stable and looks right (4 uppercase hex digits).
    """
    link_type = "02" if qr_type == "QRDynamic" else "01"
    text = f"https://qr.nspk.ru/{qr_id}?type={link_type}&bank={RAIFFEISEN_BANK_ID}"
    if amount_kopecks is not None and qr_type != "QRVariable":
        text += f"&sum={amount_kopecks}&cur=RUB"
    return f"{text}&crc={crc16(text.encode('ascii')):04X}"
