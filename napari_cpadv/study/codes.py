"""Reader codes and receipts: what makes a reader's log theirs alone.

At ``study create`` each enrolled reader gets a random secret of 80 bits, handed to them
as a short code (``ABCD-EFGH-IJKL-MNOP``, base32). Their log is chained with HMAC-SHA256
under that secret, so nobody without the code can write, extend or rewrite a valid log for
them, whoever holds the study folder. The manifest keeps only a verifier of each code (a
hash of it with the study id and the reader id: 80 random bits cannot be guessed back);
the owner's key keeps the codes, for the analysis.

A receipt is the head of a reader's chain when they stop (``reader:seq:hash-prefix``):
the owner writes it down, and the analysis proves that no event up to it was removed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from napari_cpadv.errors import CpadvError

CODE_BYTES = 10
RECEIPT_HEX = 16


def new_code() -> str:
    """A fresh reader code: 80 random bits as four groups of four base32 letters."""
    text = base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode()
    return "-".join(text[i : i + 4] for i in range(0, 16, 4))


def secret_of(code: str) -> bytes:
    """The secret a code stands for (case, spaces and dashes do not matter).

    Raises
    ------
    CpadvError
        When the text is not a reader code.
    """
    text = "".join(code.split()).replace("-", "").upper()
    try:
        raw = base64.b32decode(text)
    except (ValueError, base64.binascii.Error):  # type: ignore[attr-defined]
        raise CpadvError(None, "that is not a reader code (16 letters A-Z and 2-7)") from None
    if len(raw) != CODE_BYTES:
        raise CpadvError(None, "that is not a reader code (16 letters A-Z and 2-7)")
    return raw


def verifier(study_id: str, reader: str, secret: bytes) -> str:
    """What the manifest keeps of a reader's code: enough to check it, not to recover it."""
    label = f"napari-cpadv reader code\0{study_id}\0{reader}\0".encode()
    return hashlib.sha256(label + secret).hexdigest()


def chain_mac(secret: bytes, payload: bytes) -> str:
    """HMAC-SHA256 of one log line's canonical JSON under the reader's secret."""
    return hmac.new(secret, payload, hashlib.sha256).hexdigest()


def receipt(reader: str, seq: int, head: str) -> str:
    """The chain head as a short text the owner can write down."""
    return f"{reader}:{seq}:{head[:RECEIPT_HEX]}"


def parse_receipt(text: str) -> tuple[str, int, str]:
    """``(reader, seq, hash prefix)`` of a receipt line.

    Raises
    ------
    CpadvError
        When the line is not a receipt.
    """
    parts = text.strip().split(":")
    if len(parts) != 3 or not parts[1].isdigit() or len(parts[2]) != RECEIPT_HEX:
        raise CpadvError(None, f"{text.strip()!r} is not a receipt (reader:line:16 hex digits)")
    try:
        int(parts[2], 16)
    except ValueError:
        raise CpadvError(None, f"{text.strip()!r} is not a receipt (hex digits)") from None
    return parts[0], int(parts[1]), parts[2].lower()
