"""The heartbeat's wire format, as upstream's (``health_daemon/status_message.py``).

A datagram is the zlib-compressed JSON message followed by its HMAC-SHA256, keyed by the
shared heartbeat key, as 64 hex characters; the older raw 32-byte digest is accepted too.
Standard library only: the amphora agent and the health manager both use it.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import zlib
from typing import Any

HEX_DIGEST_SIZE = 64
RAW_DIGEST_SIZE = 32
# A datagram inflates to at most this much JSON: a forged "zip bomb" stops here.
MAX_MESSAGE_SIZE = 4 * 1024 * 1024


class InvalidMessage(Exception):
    """The datagram is not a heartbeat: wrong signature, or not compressed JSON."""


class InvalidHMAC(InvalidMessage):
    """The signature does not match the heartbeat key."""


def _digest(payload: bytes, key: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()


def wrap(message: dict[str, Any], key: str) -> bytes:
    """The datagram carrying ``message``, signed with ``key``."""
    payload = zlib.compress(json.dumps(message, separators=(",", ":")).encode(), 9)
    return payload + _digest(payload, key.encode()).hex().encode()


def _signed_payload(envelope: bytes, key: bytes) -> bytes:
    for size, encode in ((HEX_DIGEST_SIZE, lambda d: d.hex().encode()),
                         (RAW_DIGEST_SIZE, lambda d: d)):
        if len(envelope) > size:
            payload, signature = envelope[:-size], envelope[-size:]
            if hmac.compare_digest(encode(_digest(payload, key)), signature):
                return payload
    raise InvalidHMAC("the heartbeat's HMAC does not match the heartbeat key")


def unwrap(envelope: bytes, key: str) -> dict[str, Any]:
    """The message inside a datagram; InvalidMessage if it is not a valid signed one."""
    payload = _signed_payload(envelope, key.encode())
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(payload, MAX_MESSAGE_SIZE)
        if inflater.unconsumed_tail:
            raise InvalidMessage("the heartbeat inflates beyond the size limit")
        message = json.loads(text)
    except (zlib.error, ValueError) as exc:
        raise InvalidMessage(f"the heartbeat is not compressed JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise InvalidMessage("the heartbeat is not a JSON object")
    return message
