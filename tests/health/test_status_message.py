"""The heartbeat envelope: zlib JSON + HMAC-SHA256, as upstream's status_message."""
from __future__ import annotations

import hashlib
import hmac
import json
import zlib

import pytest

from lbaas.amphora.agent.status_message import InvalidHMAC, InvalidMessage, unwrap, wrap

KEY = "a-heartbeat-key"
MESSAGE = {"id": "amp", "seq": 7, "ver": 3, "listeners": {}, "pools": {}}


def test_a_wrapped_message_unwraps_with_the_same_key():
    assert unwrap(wrap(MESSAGE, KEY), KEY) == MESSAGE


def test_the_signature_is_upstreams_hex_hmac_sha256_after_the_compressed_json():
    envelope = wrap(MESSAGE, KEY)
    payload, signature = envelope[:-64], envelope[-64:]
    assert json.loads(zlib.decompress(payload)) == MESSAGE
    assert signature == hmac.new(KEY.encode(), payload, hashlib.sha256).hexdigest().encode()


def test_the_legacy_raw_digest_is_accepted():
    payload = zlib.compress(json.dumps(MESSAGE).encode())
    envelope = payload + hmac.new(KEY.encode(), payload, hashlib.sha256).digest()
    assert unwrap(envelope, KEY) == MESSAGE


@pytest.mark.parametrize("envelope", [
    wrap(MESSAGE, "another-key"),
    wrap(MESSAGE, KEY)[:-1] + b"0",
    b"",
    b"garbage",
    b"x" * 200,
])
def test_a_wrongly_signed_or_unsigned_datagram_is_refused(envelope):
    with pytest.raises(InvalidHMAC):
        unwrap(envelope, KEY)


def _signed(payload: bytes) -> bytes:
    return payload + hmac.new(KEY.encode(), payload, hashlib.sha256).hexdigest().encode()


@pytest.mark.parametrize("payload", [
    b"not zlib at all",
    zlib.compress(b"not json"),
    zlib.compress(b"[1, 2, 3]"),
])
def test_a_signed_datagram_that_is_not_a_compressed_json_object_is_malformed(payload):
    with pytest.raises(InvalidMessage) as caught:
        unwrap(_signed(payload), KEY)
    assert not isinstance(caught.value, InvalidHMAC)


def test_a_signed_zip_bomb_is_refused_without_inflating_it():
    with pytest.raises(InvalidMessage, match="size limit"):
        unwrap(_signed(zlib.compress(b" " * (64 * 1024 * 1024), 9)), KEY)
