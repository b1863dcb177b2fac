"""The entry-code scheme on its own: RFC 6238 steps, drift, re-keying, parsing."""

from __future__ import annotations

import hashlib
import hmac

from backend.door import codes

SEED = b"12345678901234567890123456789012"  # RFC 6238 appendix B's SHA-256 seed


def test_totp_matches_the_rfc_6238_sha256_vectors_at_8_digits() -> None:
    # RFC 6238 appendix B, 30 s steps: time -> TOTP (SHA256).
    vectors = {
        59: "46119246",
        1111111109: "68084774",
        1111111111: "67062674",
        1234567890: "91819424",
        2000000000: "90698825",
        20000000000: "77737706",
    }
    for unix, expected in vectors.items():
        assert codes.totp(SEED, unix // 30) == expected


def test_codes_rotate_every_15_seconds() -> None:
    secret = codes.ticket_secret(b"k", 1, 256, "0xabc", 0)
    first = codes.issue(secret, 1, 256, 0, 1_000_000_005.0)
    same_step = codes.issue(secret, 1, 256, 0, 1_000_000_014.9)
    next_step = codes.issue(secret, 1, 256, 0, 1_000_000_020.0)
    assert first == same_step
    assert next_step.step == first.step + 1 and next_step.otp != first.otp


def test_one_step_of_drift_is_accepted_either_way_and_two_are_not() -> None:
    secret = codes.ticket_secret(b"k", 1, 256, "0xabc", 0)
    code = codes.issue(secret, 1, 256, 0, 1_000_000_005.0)
    step = codes.STEP_SECONDS
    assert codes.check(code, secret, 1_000_000_005.0) == codes.CodeCheck.VALID
    assert codes.check(code, secret, 1_000_000_005.0 + step) == codes.CodeCheck.VALID
    assert codes.check(code, secret, 1_000_000_005.0 - step) == codes.CodeCheck.VALID
    assert codes.check(code, secret, 1_000_000_005.0 + 2 * step) == codes.CodeCheck.EXPIRED
    assert codes.check(code, secret, 1_000_000_005.0 - 2 * step) == codes.CodeCheck.EARLY


def test_a_new_holder_or_epoch_gets_a_new_secret() -> None:
    key = codes.door_key(b"service secret")
    first = codes.ticket_secret(key, 1, 256, "0xAbC", 0)
    assert first == codes.ticket_secret(key, 1, 256, "0xabc", 0)  # addresses compare lowercase
    assert first != codes.ticket_secret(key, 1, 256, "0xdef", 1)
    assert first != codes.ticket_secret(key, 1, 256, "0xabc", 2)  # the same wallet, back later
    assert first != codes.ticket_secret(key, 2, 256, "0xabc", 0)
    code = codes.issue(first, 1, 256, 0, 1e9)
    assert codes.check(code, codes.ticket_secret(key, 1, 256, "0xdef", 1), 1e9) == (
        codes.CodeCheck.FORGED
    )


def test_the_door_key_is_not_the_service_secret_itself() -> None:
    key = codes.door_key(b"service secret")
    assert key != b"service secret"
    assert key == hmac.new(b"service secret", b"fairtix door key v1", hashlib.sha256).digest()


def test_codes_parse_back_and_anything_else_does_not() -> None:
    code = codes.EntryCode(12, 3072, 1, 66666666, "01234567")
    assert codes.parse(code.text()) == code
    text = code.text()
    assert text == "FTX1:12:3072:1:66666666:01234567"
    assert set(text) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")  # QR alphanumeric
    for bad in (
        "",
        "hello",
        text[:-1],
        text + "9",
        text.replace("FTX1", "FTX2"),
        "FTX1:1:2:3:4:abcdefgh",
        "FTX1:-1:2:3:4:12345678",
        "x" * 10_000,
    ):
        assert codes.parse(bad) is None


def test_secrets_round_trip_through_base32() -> None:
    secret = codes.ticket_secret(b"k", 1, 256, "0xabc", 0)
    assert codes.secret_from_text(codes.secret_text(secret)) == secret
    assert "=" not in codes.secret_text(secret)
