"""The heartbeat's wire format, as upstream's (``health_daemon/status_message.py``).

A datagram is the zlib-compressed JSON message followed by its HMAC-SHA256 as 64 hex
characters (the older raw 32-byte digest is accepted too). Unlike upstream, where every
amphora signs with the one shared key, each amphora signs with its own key,
``amphora_key(secret, amphora_id)``: derived from the controller's secret and the amphora's
id, so the health manager needs no table of keys, and an amphora that is taken over can
sign only for itself. Standard library only: the amphora agent and the health manager
both use it.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import zlib
from collections.abc import Callable
from typing import Any

HEX_DIGEST_SIZE = 64
RAW_DIGEST_SIZE = 32
# How a signature may be sent: its size, and the digest written that way.
SIGNATURE_FORMS: tuple[tuple[int, Callable[[bytes], bytes]], ...] = (
    (HEX_DIGEST_SIZE, lambda digest: digest.hex().encode()), (RAW_DIGEST_SIZE, lambda digest: digest))
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
    for size, encode in SIGNATURE_FORMS:
        if len(envelope) > size:
            payload, signature = envelope[:-size], envelope[-size:]
            if hmac.compare_digest(encode(_digest(payload, key)), signature):
                return payload
    raise InvalidHMAC("the heartbeat's HMAC does not match the heartbeat key")


KEY_CONTEXT = b"lbaas amphora heartbeat key\0"


def amphora_key(secret: str, amphora_id: str) -> str:
    """The key amphora ``amphora_id`` signs its heartbeats with (64 hex characters)."""
    return hmac.new(secret.encode(), KEY_CONTEXT + amphora_id.encode(), hashlib.sha256).hexdigest()


def _inflate(payload: bytes) -> dict[str, Any]:
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


def unwrap_from_amphora(envelope: bytes, secret: str) -> dict[str, Any]:
    """The message inside a datagram if it is signed with the key of the amphora it names
    (``amphora_key(secret, id)``); InvalidHMAC if not, InvalidMessage if it is no heartbeat.

    The payload is inflated (bounded) before its signature is checked: the id it carries
    says which key must have signed it.
    """
    malformed: InvalidMessage | None = None
    for size, encode in SIGNATURE_FORMS:
        if len(envelope) <= size:
            continue
        payload, signature = envelope[:-size], envelope[-size:]
        try:
            message = _inflate(payload)
        except InvalidMessage as exc:
            malformed = exc
            continue
        amphora_id = message.get("id")
        if not isinstance(amphora_id, str) or not amphora_id:
            raise InvalidMessage("the heartbeat has no amphora id")
        key = amphora_key(secret, amphora_id).encode()
        if hmac.compare_digest(encode(_digest(payload, key)), signature):
            return message
        raise InvalidHMAC(f"the heartbeat is not signed with amphora {amphora_id}'s key")
    raise malformed or InvalidMessage("the datagram is too short to be a heartbeat")


def unwrap(envelope: bytes, key: str) -> dict[str, Any]:
    """The message inside a datagram; InvalidMessage if it is not a valid signed one."""
    return _inflate(_signed_payload(envelope, key.encode()))
