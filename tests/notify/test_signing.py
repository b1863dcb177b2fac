"""verify_signature: what a receiver runs on each delivery."""

from __future__ import annotations

import pytest

from backend.notify.errors import WebhookSignatureError
from backend.notify.signing import compute_signature, sign, verify_signature

SECRET = "whsec_" + "ab" * 32
BODY = b'{"id":"evt_1","type":"order.fulfilled"}'
NOW = 1_800_000_000


def test_verify_accepts_a_fresh_signature() -> None:
    assert verify_signature(SECRET, sign(SECRET, NOW, BODY), BODY, now=NOW + 10) == NOW


def test_verify_accepts_a_str_body() -> None:
    header = sign(SECRET, NOW, BODY)
    assert verify_signature(SECRET, header, BODY.decode(), now=NOW) == NOW


def test_verify_accepts_any_of_several_v1_signatures() -> None:
    header = f"t={NOW},v1={'0' * 64},v1={compute_signature(SECRET, NOW, BODY)}"
    assert verify_signature(SECRET, header, BODY, now=NOW) == NOW


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, BODY) == f"t={NOW},v1={expected}"


@pytest.mark.parametrize(
    ("header", "body", "secret", "reason"),
    [
        (sign(SECRET, NOW, BODY), BODY + b" ", SECRET, "no v1 signature matches"),
        (sign(SECRET, NOW, BODY), BODY, "whsec_other", "no v1 signature matches"),
        (sign(SECRET, NOW, BODY).replace(f"t={NOW}", f"t={NOW + 1}"), BODY, SECRET, "matches"),
        (f"v1={compute_signature(SECRET, NOW, BODY)}", BODY, SECRET, "no timestamp"),
        (f"t={NOW}", BODY, SECRET, "no v1 signature"),
        ("t=soon,v1=00", BODY, SECRET, "not a number"),
        ("garbage", BODY, SECRET, "key=value"),
        ("", BODY, SECRET, "key=value"),
    ],
)
def test_verify_rejects_a_tampered_or_malformed_header(
    header: str, body: bytes, secret: str, reason: str
) -> None:
    with pytest.raises(WebhookSignatureError, match=reason):
        verify_signature(secret, header, body, now=NOW)


@pytest.mark.parametrize("skew", [301, -301])
def test_verify_rejects_a_timestamp_outside_the_tolerance(skew: int) -> None:
    with pytest.raises(WebhookSignatureError, match="tolerance 300 s"):
        verify_signature(SECRET, sign(SECRET, NOW, BODY), BODY, tolerance=300, now=NOW + skew)
