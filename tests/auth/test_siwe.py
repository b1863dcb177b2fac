"""Sign-In with Ethereum (EIP-4361): parsing against the reference suite, and verification."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.auth.errors import (
    AuthError,
    SiweBadSignature,
    SiweChainMismatch,
    SiweDomainMismatch,
    SiweError,
    SiweExpired,
    SiweIssuedInFuture,
    SiweNonceMismatch,
    SiweNotYetValid,
    SiweParseError,
    SiweSignerMismatch,
    SiweUriMismatch,
)
from backend.auth.siwe import CLOCK_SKEW, SECP256K1_N, SiweMessage, parse_message, verify

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT.parent / "shared" / "vectors" / "siwe"

# The reference suite's camelCase field names, mapped to SiweMessage attributes.
FIELD_ATTRIBUTES = {
    "scheme": "scheme",
    "domain": "domain",
    "address": "address",
    "statement": "statement",
    "uri": "uri",
    "version": "version",
    "chainId": "chain_id",
    "nonce": "nonce",
    "issuedAt": "issued_at",
    "expirationTime": "expiration_time",
    "notBefore": "not_before",
    "requestId": "request_id",
    "resources": "resources",
}


def vector_params(file_name: str) -> list[Any]:
    path = VECTORS / file_name
    cases = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if not cases:
        # An absent or emptied vector file must fail the run, not shrink it to nothing.
        return [pytest.param(None, id=f"missing:{file_name}")]
    return [pytest.param(case, id=name) for name, case in cases.items()]


def require_vector(case: Any) -> Any:
    if case is None:
        pytest.fail(f"reference vectors not found or empty under {VECTORS}")
    return case


# ---------------------------------------------------------------------------------------------
# Reference suite
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", vector_params("parsing_positive.json"))
def test_parse_message_reads_every_field_of_positive_vector(case: Any) -> None:
    case = require_vector(case)
    fields: dict[str, Any] = case["fields"]
    assert set(fields) <= set(FIELD_ATTRIBUTES), "vector has a field this test does not map"
    expected: dict[str, Any] = dict.fromkeys(FIELD_ATTRIBUTES.values())
    expected["resources"] = ()
    for name, value in fields.items():
        expected[FIELD_ATTRIBUTES[name]] = tuple(value) if name == "resources" else value

    message = parse_message(case["message"])

    assert {attribute: getattr(message, attribute) for attribute in expected} == expected


@pytest.mark.parametrize("case", vector_params("parsing_positive.json"))
def test_to_text_round_trips_positive_vector_exactly(case: Any) -> None:
    text = require_vector(case)["message"]
    message = parse_message(text)

    assert message.to_text() == text
    assert parse_message(message.to_text()) == message


@pytest.mark.parametrize("case", vector_params("parsing_negative.json"))
def test_parse_message_rejects_negative_vector(case: Any) -> None:
    text = require_vector(case)

    with pytest.raises(SiweParseError) as raised:
        parse_message(text)

    assert isinstance(raised.value, SiweError)
    assert raised.value.line is not None
    assert f"line {raised.value.line}" in str(raised.value)


# ---------------------------------------------------------------------------------------------
# Grammar details the reference suite does not reach
# ---------------------------------------------------------------------------------------------

ADDRESS = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
BASE_TEXT = (
    "example.com wants you to sign in with your Ethereum account:\n"
    f"{ADDRESS}\n"
    "\n"
    "Sign in to fairtix.\n"
    "\n"
    "URI: https://example.com/login\n"
    "Version: 1\n"
    "Chain ID: 1\n"
    "Nonce: abcdefgh12\n"
    "Issued At: 2024-02-29T12:00:00Z"
)
ALL_OPTIONAL_FIELDS = (
    "\nExpiration Time: 2024-03-01T12:00:00.5+01:00"
    "\nNot Before: 2024-02-29T11:00:00Z"
    "\nRequest ID: req-42:@!"
    "\nResources:"
    "\n- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/"
    "\n- https://example.com/my-web2-claim.json"
)


def edit(old: str, new: str) -> str:
    assert old in BASE_TEXT
    return BASE_TEXT.replace(old, new, 1)


ACCEPTED = [
    pytest.param(BASE_TEXT, id="minimal"),
    pytest.param(BASE_TEXT + ALL_OPTIONAL_FIELDS, id="all optional fields"),
    pytest.param(edit("Sign in to fairtix.\n", ""), id="no statement"),
    pytest.param(edit("Sign in to fairtix.", ""), id="empty statement"),
    pytest.param(
        edit("Sign in to fairtix.", "Reserved :/?#[]@!$&'()*+,;= and unreserved -._~ Az09"),
        id="statement with every allowed symbol",
    ),
    pytest.param(BASE_TEXT + "\nRequest ID: ", id="empty request id"),
    pytest.param(edit("2024-02-29T12:00:00Z", "2024-02-29t12:00:00z"), id="lowercase t and z"),
    pytest.param(edit("12:00:00Z", "12:00:00.123456789Z"), id="nanosecond fraction"),
    pytest.param(edit("12:00:00Z", "12:00:00-00:00"), id="unknown local offset"),
    pytest.param(edit("2024-02-29T12:00:00Z", "2016-12-31T23:59:60Z"), id="leap second"),
    pytest.param(
        edit("2024-02-29T12:00:00Z", "2016-12-31T15:59:60-08:00"), id="leap second with offset"
    ),
    pytest.param(edit("Chain ID: 1", "Chain ID: 0"), id="chain id zero"),
    pytest.param(edit("Chain ID: 1", "Chain ID: 11155111"), id="chain id sepolia"),
    pytest.param(edit("example.com", "http://localhost:3000"), id="scheme and port"),
    pytest.param(edit("example.com", "app+v1.x-y://example.com"), id="scheme with symbols"),
    pytest.param(edit("example.com", "user:pw%20x@example.com:8443"), id="domain with userinfo"),
    pytest.param(edit("example.com", "[2001:db8::7]:443"), id="domain ipv6 with port"),
    pytest.param(edit("example.com", "[::ffff:192.0.2.1]"), id="domain ipv4-mapped ipv6"),
    pytest.param(edit("example.com", "[v1.fe80::a+en1]"), id="domain ipvfuture"),
    pytest.param(edit("example.com", "example.com:"), id="domain with empty port"),
    pytest.param(edit("https://example.com/login", "urn:uuid:6e8bc430-9c3a"), id="uri urn"),
    pytest.param(edit("https://example.com/login", "did:pkh:eip155:1:" + ADDRESS), id="uri did"),
    pytest.param(edit("https://example.com/login", "file:///tmp/x%20y"), id="uri empty host"),
    pytest.param(edit("https://example.com/login", "mailto:a@example.com"), id="uri mailto"),
]


@pytest.mark.parametrize("text", ACCEPTED)
def test_parse_message_accepts_what_the_abnf_allows(text: str) -> None:
    message = parse_message(text)

    assert message.to_text() == text


def test_parse_message_distinguishes_empty_statement_from_none() -> None:
    assert parse_message(edit("Sign in to fairtix.\n", "")).statement is None
    assert parse_message(edit("Sign in to fairtix.", "")).statement == ""


def test_a_resources_line_with_no_resource_is_accepted_and_round_trips() -> None:
    # What the siwe npm package writes for `resources: []`; EIP-4361's ABNF allows zero lines.
    message = parse_message(BASE_TEXT + "\nResources:")
    assert message.resources == () and message.resources_line
    assert message.to_text() == BASE_TEXT + "\nResources:"
    assert not parse_message(BASE_TEXT).resources_line


REJECTED = [
    pytest.param("", id="empty text"),
    pytest.param(BASE_TEXT + "\n", id="trailing line break"),
    pytest.param(BASE_TEXT.replace("\n", "\r\n"), id="crlf line breaks"),
    pytest.param(BASE_TEXT + "\nFoo: bar", id="unknown field"),
    pytest.param(BASE_TEXT + "\nNonce: abcdefgh12", id="repeated field"),
    pytest.param(BASE_TEXT + "\n\nExpiration Time: 2024-03-01T12:00:00Z", id="blank line in tail"),
    pytest.param(BASE_TEXT + "\nResources:\n-https://example.com", id="resource without space"),
    pytest.param(BASE_TEXT + "\nExpiration Time:2024-03-01T12:00:00Z", id="tag without space"),
    pytest.param(BASE_TEXT + "\nRequest ID: a b", id="request id with space"),
    pytest.param(BASE_TEXT + "\nRequest ID: a/b", id="request id with slash"),
    pytest.param(edit("example.com wants", "Example.com Wants"), id="header wording changed"),
    pytest.param(edit("example.com", "user@"), id="domain empty host"),
    pytest.param(edit("example.com", ":8080"), id="domain only port"),
    pytest.param(edit("example.com", "example.com/login"), id="domain with path"),
    pytest.param(edit("example.com", "exa mple.com"), id="domain with space"),
    pytest.param(edit("example.com", "[::g]"), id="domain bad ipv6"),
    pytest.param(edit("example.com", "[1:2:3:4:5:6:7:8:9]"), id="domain ipv6 too long"),
    pytest.param(edit("example.com", "[fe80::1%eth0]"), id="domain ipv6 zone id"),
    pytest.param(edit("example.com", "example.com:80a"), id="domain port not numeric"),
    pytest.param(edit("example.com", "1http://example.com"), id="scheme starting with digit"),
    pytest.param(edit("example.com", "://example.com"), id="empty scheme"),
    pytest.param(edit("example.com", "exämple.com"), id="domain not ascii"),
    pytest.param(edit(ADDRESS, ADDRESS.lower()), id="address all lowercase"),
    pytest.param(edit(ADDRESS, "0x" + ADDRESS[2:].upper()), id="address all uppercase"),
    pytest.param(edit(ADDRESS, "0X" + ADDRESS[2:]), id="address uppercase 0X"),
    pytest.param(edit(ADDRESS, ADDRESS[:-1]), id="address too short"),
    pytest.param(edit(ADDRESS, ADDRESS.replace("C02", "c02")), id="address bad checksum"),
    pytest.param(edit(f"{ADDRESS}\n\n", f"{ADDRESS}\n"), id="no blank line after address"),
    pytest.param(edit("fairtix.\n\n", "fairtix.\n"), id="no blank line after statement"),
    pytest.param(edit("fairtix.\n\n", "fairtix.\n\n\n"), id="two blank lines after statement"),
    pytest.param(edit("Sign in to fairtix.", "Sign in to café"), id="statement not ascii"),
    pytest.param(edit("Sign in to fairtix.", "100% safe"), id="statement with percent"),
    pytest.param(edit("Sign in to fairtix.", 'Say "hi"'), id="statement with quote"),
    pytest.param(edit("Sign in to fairtix.", "tab\there"), id="statement with tab"),
    pytest.param(edit("URI: https", "Uri: https"), id="tag in wrong case"),
    pytest.param(edit("https://example.com/login", "/login"), id="uri relative"),
    pytest.param(edit("https://example.com/login", "https://exa mple.com"), id="uri with space"),
    pytest.param(edit("https://example.com/login", "https://example.com/%zz"), id="uri bad pct"),
    pytest.param(edit("https://example.com/login", "https://[::1"), id="uri unclosed ipv6"),
    pytest.param(edit("https://example.com/login", "https://a/b#c#d"), id="uri two fragments"),
    pytest.param(edit("Version: 1", "Version: 1.0"), id="version 1.0"),
    pytest.param(edit("Chain ID: 1", "Chain ID: 01"), id="chain id leading zero"),
    pytest.param(edit("Chain ID: 1", "Chain ID: -1"), id="chain id negative"),
    pytest.param(edit("Chain ID: 1", "Chain ID: \u0661"), id="chain id arabic-indic digit"),
    pytest.param(edit("Chain ID: 1", "Chain ID: 1" + "0" * 78), id="chain id beyond 256 bits"),
    pytest.param(edit("Chain ID: 1", "Chain ID: "), id="chain id empty"),
    pytest.param(edit("abcdefgh12", "abcd-efgh"), id="nonce with symbol"),
    pytest.param(edit("abcdefgh12", "abcdéfgh12"), id="nonce not ascii"),
    pytest.param(edit("2024-02-29T12:00:00Z", "2024-13-01T12:00:00Z"), id="month 13"),
    pytest.param(edit("2024-02-29T12:00:00Z", "2024-00-01T12:00:00Z"), id="month 00"),
    pytest.param(edit("2024-02-29T12:00:00Z", "2024-02-30T12:00:00Z"), id="february 30"),
    pytest.param(edit("2024-02-29T12:00:00Z", "2023-02-29T12:00:00Z"), id="february 29 non-leap"),
    pytest.param(edit("2024-02-29T12:00:00Z", "2024-04-31T12:00:00Z"), id="april 31"),
    pytest.param(edit("2024-02-29T12:00:00Z", "2024-02-00T12:00:00Z"), id="day 00"),
    pytest.param(edit("2024-02-29T12:00:00Z", "0000-01-01T00:00:00Z"), id="year 0000"),
    pytest.param(edit("12:00:00Z", "24:00:00Z"), id="hour 24"),
    pytest.param(edit("12:00:00Z", "12:60:00Z"), id="minute 60"),
    pytest.param(edit("12:00:00Z", "12:00:61Z"), id="second 61"),
    pytest.param(edit("12:00:00Z", "12:00:60Z"), id="leap second not at 23:59"),
    pytest.param(edit("2024-02-29T12:00:00Z", "2024-02-28T23:59:60Z"), id="leap second mid month"),
    pytest.param(edit("12:00:00Z", "12:00:00+24:00"), id="offset hour 24"),
    pytest.param(edit("12:00:00Z", "12:00:00+01:60"), id="offset minute 60"),
    pytest.param(edit("12:00:00Z", "12:00:00+0100"), id="offset without colon"),
    pytest.param(edit("12:00:00Z", "12:00:00"), id="no offset"),
    pytest.param(edit("12:00:00Z", "12:00:00.Z"), id="empty fraction"),
    pytest.param(edit("12:00:00Z", "12:00Z"), id="no seconds"),
    pytest.param(edit("2024-02-29T", "2024-02-29 "), id="space instead of T"),
    pytest.param(edit("2024-02-29T12:00:00Z", "2024-02-29"), id="date only"),
    pytest.param(BASE_TEXT + "\nExpiration Time: 2024-02-30T00:00:00Z", id="expiration feb 30"),
    pytest.param(BASE_TEXT + "\nNot Before: 2024-01-01T25:00:00Z", id="not before hour 25"),
]


@pytest.mark.parametrize("text", REJECTED)
def test_parse_message_rejects_what_the_abnf_forbids(text: str) -> None:
    with pytest.raises(SiweParseError) as raised:
        parse_message(text)

    assert raised.value.line is not None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (edit("Chain ID: 1", "Chain ID: 01"), "line 8, Chain ID: '01' has leading zeros"),
        (edit("2024-02-29T", "2024-02-30T"), "line 10, Issued At: '2024-02-30T12:00:00Z': 2024-02"),
        (edit(ADDRESS, ADDRESS.lower()), f"line 2, address: {ADDRESS.lower()!r}"),
        (BASE_TEXT + "\nFoo: bar", "line 11: unexpected line 'Foo: bar'"),
        (edit("URI: https://example.com/login\nVersion: 1", "Version: 1"), "line 6, URI: found"),
    ],
)
def test_parse_error_names_the_line_and_field(text: str, fragment: str) -> None:
    with pytest.raises(SiweParseError) as raised:
        parse_message(text)

    assert fragment in str(raised.value)


def test_datetime_helpers_give_aware_utc_instants() -> None:
    message = parse_message(BASE_TEXT + ALL_OPTIONAL_FIELDS)

    assert message.issued_at_dt == datetime(2024, 2, 29, 12, 0, tzinfo=UTC)
    assert message.expiration_dt == datetime(2024, 3, 1, 11, 0, 0, 500000, tzinfo=UTC)
    assert message.not_before_dt == datetime(2024, 2, 29, 11, 0, tzinfo=UTC)
    assert message.issued_at_dt.utcoffset() == timedelta(0)


def test_datetime_helpers_are_none_for_absent_fields() -> None:
    message = parse_message(BASE_TEXT)

    assert message.expiration_dt is None
    assert message.not_before_dt is None


def test_leap_second_counts_as_the_next_instant() -> None:
    message = parse_message(edit("2024-02-29T12:00:00Z", "2016-12-31T15:59:60-08:00"))

    assert message.issued_at_dt == datetime(2017, 1, 1, tzinfo=UTC)


def test_fraction_beyond_microseconds_is_truncated_but_kept_in_text() -> None:
    text = edit("12:00:00Z", "12:00:00.123456789Z")
    message = parse_message(text)

    assert message.issued_at_dt.microsecond == 123456
    assert message.issued_at == "2024-02-29T12:00:00.123456789Z"


def base_message(address: str = ADDRESS) -> SiweMessage:
    return SiweMessage(
        domain="fairtix.dev",
        address=address,
        statement="Sign in to fairtix.",
        uri="https://fairtix.dev/login",
        version="1",
        chain_id=1,
        nonce="n0nce4361abc",
        issued_at="2024-03-01T11:59:00Z",
        expiration_time="2024-03-01T12:10:00Z",
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"domain": ""}, "domain"),
        ({"scheme": ""}, "scheme"),
        ({"address": ADDRESS.lower()}, "address"),
        ({"statement": "two\nlines"}, "statement"),
        ({"uri": "not a uri"}, "URI"),
        ({"version": "2"}, "Version"),
        ({"chain_id": -1}, "Chain ID"),
        ({"chain_id": True}, "Chain ID"),
        ({"nonce": "short"}, "Nonce"),
        ({"issued_at": "2024-02-30T00:00:00Z"}, "Issued At"),
        ({"expiration_time": "tomorrow"}, "Expiration Time"),
        ({"not_before": "2024-03-01"}, "Not Before"),
        ({"request_id": "a b"}, "Request ID"),
        ({"resources": ("ok:fine", "not a uri")}, "Resources"),
    ],
)
def test_constructing_a_message_validates_each_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(SiweParseError) as raised:
        replace(base_message(), **changes)

    assert raised.value.field == field
    assert raised.value.line is None


def test_to_text_lays_out_the_eip_example() -> None:
    message = SiweMessage(
        domain="example.com",
        address=ADDRESS,
        statement="I accept the ExampleOrg Terms of Service: https://example.com/tos",
        uri="https://example.com/login",
        version="1",
        chain_id=1,
        nonce="32891756",
        issued_at="2021-09-30T16:25:24Z",
        resources=(
            "ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/",
            "https://example.com/my-web2-claim.json",
        ),
        scheme="https",
    )

    assert message.to_text() == (
        "https://example.com wants you to sign in with your Ethereum account:\n"
        "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2\n"
        "\n"
        "I accept the ExampleOrg Terms of Service: https://example.com/tos\n"
        "\n"
        "URI: https://example.com/login\n"
        "Version: 1\n"
        "Chain ID: 1\n"
        "Nonce: 32891756\n"
        "Issued At: 2021-09-30T16:25:24Z\n"
        "Resources:\n"
        "- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/\n"
        "- https://example.com/my-web2-claim.json"
    )


STATEMENT_ALPHABET = (
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;= "
)
PCHAR_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@"
URIS = [
    "https://fairtix.dev/login",
    "https://[::cafe]:8443/a/b?c=d#e",
    "http://127.0.0.1",
    "ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/",
    "urn:isbn:0451450523",
    "did:pkh:eip155:1:0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
]
OFFSETS = [UTC, timezone(timedelta(hours=-2, minutes=-30)), timezone(timedelta(hours=14))]
date_times = st.datetimes(
    min_value=datetime(2, 1, 1),
    max_value=datetime(9998, 12, 31),
    timezones=st.sampled_from(OFFSETS),
).map(lambda value: value.isoformat())


@settings(database=None, max_examples=60, deadline=None)
@given(
    scheme=st.none() | st.sampled_from(["https", "http", "app+x.y-z"]),
    domain=st.sampled_from(["fairtix.dev", "localhost:8080", "u:p@127.0.0.1:443", "[::1]:3000"]),
    address=st.binary(min_size=20, max_size=20).map(to_checksum_address),
    statement=st.none() | st.text(STATEMENT_ALPHABET, max_size=60),
    uri=st.sampled_from(URIS),
    chain_id=st.integers(min_value=0, max_value=2**256 - 1),
    nonce=st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=8),
    issued_at=date_times,
    expiration_time=st.none() | date_times,
    not_before=st.none() | date_times,
    request_id=st.none() | st.text(PCHAR_ALPHABET, max_size=20),
    resources=st.lists(st.sampled_from(URIS), max_size=3).map(tuple),
)
def test_parse_message_inverts_to_text(**fields: Any) -> None:
    message = SiweMessage(version="1", **fields)

    assert parse_message(message.to_text()) == message


# ---------------------------------------------------------------------------------------------
# verify()
# ---------------------------------------------------------------------------------------------

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def account() -> LocalAccount:
    return Account.create()


def message_text(account: LocalAccount, **changes: Any) -> str:
    return replace(base_message(account.address), **changes).to_text()


def sign(text: str, account: LocalAccount) -> str:
    signed = Account.sign_message(encode_defunct(text=text), account.key)
    return "0x" + bytes(signed.signature).hex()


def split_signature(signature: str) -> tuple[int, int, int]:
    raw = bytes.fromhex(signature[2:])
    return int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]


def join_signature(r: int, s: int, v: int) -> str:
    return "0x" + (r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])).hex()


def test_verify_accepts_message_signed_by_its_address(account: LocalAccount) -> None:
    text = message_text(account)

    message = verify(text, sign(text, account), now=NOW)

    assert message == parse_message(text)
    assert message.address == account.address


def test_verify_accepts_matching_expected_values(account: LocalAccount) -> None:
    text = message_text(account)

    message = verify(
        text,
        sign(text, account),
        domain="fairtix.dev",
        nonce="n0nce4361abc",
        chain_id=1,
        uri="https://fairtix.dev/login",
        now=NOW,
    )

    assert message.nonce == "n0nce4361abc"


def test_verify_accepts_recovery_byte_0_or_1(account: LocalAccount) -> None:
    text = message_text(account)
    r, s, v = split_signature(sign(text, account))
    assert v in (27, 28)

    verify(text, join_signature(r, s, v - 27), now=NOW)


def test_verify_accepts_uppercase_hex_signature(account: LocalAccount) -> None:
    text = message_text(account)

    verify(text, "0x" + sign(text, account)[2:].upper(), now=NOW)


def test_verify_rejects_signature_from_another_key(account: LocalAccount) -> None:
    other = Account.create()
    text = message_text(account)

    with pytest.raises(SiweSignerMismatch) as raised:
        verify(text, sign(text, other), now=NOW)

    assert raised.value.expected == account.address
    assert raised.value.recovered == other.address
    assert other.address in str(raised.value)


def test_verify_rejects_tampered_message(account: LocalAccount) -> None:
    text = message_text(account)
    signature = sign(text, account)
    tampered = text.replace("Sign in to fairtix.", "Sign in to fairtix and pay.")

    with pytest.raises(SiweSignerMismatch):
        verify(tampered, signature, now=NOW)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda sig: sig[2:], id="no 0x prefix"),
        pytest.param(lambda sig: "0X" + sig[2:], id="uppercase 0X prefix"),
        pytest.param(lambda sig: sig[:-2] + "zz", id="non-hex digits"),
        pytest.param(lambda sig: sig[:10] + " " + sig[11:], id="embedded space"),
        pytest.param(lambda sig: " " + sig, id="leading space"),
        pytest.param(lambda sig: "", id="empty"),
        pytest.param(lambda sig: "0x", id="prefix only"),
    ],
)
def test_verify_rejects_malformed_signature_hex(account: LocalAccount, mangle: Any) -> None:
    text = message_text(account)

    with pytest.raises(SiweBadSignature):
        verify(text, mangle(sign(text, account)), now=NOW)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda sig: sig[:-2], id="64 bytes"),
        pytest.param(lambda sig: sig + "00", id="66 bytes"),
        pytest.param(lambda sig: sig[:-1], id="odd number of digits"),
        pytest.param(lambda sig: sig + sig[2:], id="130 bytes"),
    ],
)
def test_verify_rejects_signature_of_wrong_length(account: LocalAccount, mangle: Any) -> None:
    text = message_text(account)

    with pytest.raises(SiweBadSignature, match="65 bytes"):
        verify(text, mangle(sign(text, account)), now=NOW)


@pytest.mark.parametrize("bad_v", [2, 26, 29, 37, 38, 255])
def test_verify_rejects_unknown_recovery_byte(account: LocalAccount, bad_v: int) -> None:
    text = message_text(account)
    r, s, _ = split_signature(sign(text, account))

    with pytest.raises(SiweBadSignature, match="recovery byte"):
        verify(text, join_signature(r, s, bad_v), now=NOW)


def test_verify_rejects_high_s_signature(account: LocalAccount) -> None:
    text = message_text(account)
    r, s, v = split_signature(sign(text, account))
    # The mirrored signature (r, n - s) with the other parity is just as valid mathematically.
    flipped_s, flipped_v = SECP256K1_N - s, 55 - v
    recovered = Account.recover_message(encode_defunct(text=text), vrs=(flipped_v, r, flipped_s))
    assert recovered == account.address

    with pytest.raises(SiweBadSignature, match="malleable"):
        verify(text, join_signature(r, flipped_s, flipped_v), now=NOW)


@pytest.mark.parametrize(
    ("r", "s"),
    [
        pytest.param(0, 1, id="r zero"),
        pytest.param(SECP256K1_N, 1, id="r equal to n"),
        pytest.param(1, 0, id="s zero"),
    ],
)
def test_verify_rejects_out_of_range_r_or_s(account: LocalAccount, r: int, s: int) -> None:
    text = message_text(account)

    with pytest.raises(SiweBadSignature):
        verify(text, join_signature(r, s, 27), now=NOW)


def test_verify_rejects_r_that_is_no_curve_point(account: LocalAccount) -> None:
    p = 2**256 - 2**32 - 977
    # r is the x coordinate of a point only if x^3 + 7 is a quadratic residue mod p.
    r = next(x for x in range(1, 100) if pow(x**3 + 7, (p - 1) // 2, p) == p - 1)
    text = message_text(account)

    with pytest.raises(SiweBadSignature, match="recovered"):
        verify(text, join_signature(r, 1, 27), now=NOW)


def test_verify_rejects_domain_mismatch(account: LocalAccount) -> None:
    text = message_text(account)

    with pytest.raises(SiweDomainMismatch) as raised:
        verify(text, sign(text, account), domain="fairtix.example", now=NOW)

    assert (raised.value.expected, raised.value.got) == ("fairtix.example", "fairtix.dev")
    assert "'fairtix.example'" in str(raised.value)


def test_verify_rejects_nonce_mismatch_without_revealing_expected_nonce(
    account: LocalAccount,
) -> None:
    text = message_text(account)

    with pytest.raises(SiweNonceMismatch) as raised:
        verify(text, sign(text, account), nonce="issuedNonce123", now=NOW)

    assert raised.value.got == "n0nce4361abc"
    assert "issuedNonce123" not in str(raised.value)


def test_verify_rejects_nonce_mismatch_for_non_ascii_expected_nonce(
    account: LocalAccount,
) -> None:
    text = message_text(account)

    with pytest.raises(SiweNonceMismatch):
        verify(text, sign(text, account), nonce="n0nce4361abç", now=NOW)


def test_verify_rejects_chain_mismatch(account: LocalAccount) -> None:
    text = message_text(account, chain_id=137)

    with pytest.raises(SiweChainMismatch) as raised:
        verify(text, sign(text, account), chain_id=1, now=NOW)

    assert (raised.value.expected, raised.value.got) == (1, 137)


def test_verify_rejects_uri_mismatch(account: LocalAccount) -> None:
    text = message_text(account)

    with pytest.raises(SiweUriMismatch) as raised:
        verify(text, sign(text, account), uri="https://fairtix.dev/other", now=NOW)

    assert raised.value.got == "https://fairtix.dev/login"


@pytest.mark.parametrize(
    "now",
    [
        pytest.param(datetime(2024, 3, 1, 12, 10, tzinfo=UTC), id="at expiration"),
        pytest.param(datetime(2024, 3, 1, 12, 10, 1, tzinfo=UTC), id="one second after"),
        pytest.param(datetime(2025, 1, 1, tzinfo=UTC), id="long after"),
    ],
)
def test_verify_rejects_expired_message(account: LocalAccount, now: datetime) -> None:
    text = message_text(account)

    with pytest.raises(SiweExpired) as raised:
        verify(text, sign(text, account), now=now)

    assert raised.value.expired_at == datetime(2024, 3, 1, 12, 10, tzinfo=UTC)
    assert raised.value.now == now
    assert "2024-03-01T12:10:00+00:00" in str(raised.value)


def test_verify_accepts_message_just_before_expiration(account: LocalAccount) -> None:
    text = message_text(account)

    verify(text, sign(text, account), now=datetime(2024, 3, 1, 12, 9, 59, 999999, tzinfo=UTC))


def test_verify_rejects_not_before_in_the_future(account: LocalAccount) -> None:
    text = message_text(account, not_before="2024-03-01T12:01:01Z")

    with pytest.raises(SiweNotYetValid) as raised:
        verify(text, sign(text, account), now=NOW)

    assert raised.value.not_before == datetime(2024, 3, 1, 12, 1, 1, tzinfo=UTC)


def test_verify_tolerates_clock_skew_for_not_before(account: LocalAccount) -> None:
    assert timedelta(seconds=60) == CLOCK_SKEW
    text = message_text(account, not_before="2024-03-01T12:01:00Z")

    verify(text, sign(text, account), now=NOW)


def test_verify_rejects_issued_at_in_the_future(account: LocalAccount) -> None:
    text = message_text(account, issued_at="2024-03-01T12:01:01Z")

    with pytest.raises(SiweIssuedInFuture) as raised:
        verify(text, sign(text, account), now=NOW)

    assert raised.value.issued_at == datetime(2024, 3, 1, 12, 1, 1, tzinfo=UTC)


def test_verify_tolerates_clock_skew_for_issued_at(account: LocalAccount) -> None:
    text = message_text(account, issued_at="2024-03-01T12:01:00Z")

    verify(text, sign(text, account), now=NOW)


def test_verify_honours_now_with_any_utc_offset(account: LocalAccount) -> None:
    text = message_text(account)
    signature = sign(text, account)
    tokyo = timezone(timedelta(hours=9))

    verify(text, signature, now=datetime(2024, 3, 1, 21, 5, tzinfo=tokyo))
    with pytest.raises(SiweExpired):
        verify(text, signature, now=datetime(2024, 3, 1, 21, 10, tzinfo=tokyo))


def test_verify_uses_the_current_time_when_now_is_omitted(account: LocalAccount) -> None:
    current = datetime.now(UTC).replace(microsecond=0)
    fresh = message_text(
        account,
        issued_at=(current - timedelta(minutes=1)).isoformat(),
        expiration_time=(current + timedelta(minutes=10)).isoformat(),
    )
    stale = message_text(account)

    verify(fresh, sign(fresh, account))
    with pytest.raises(SiweExpired):
        verify(stale, sign(stale, account))


def test_verify_rejects_naive_now(account: LocalAccount) -> None:
    text = message_text(account)

    with pytest.raises(ValueError, match="timezone-aware"):
        verify(text, sign(text, account), now=datetime(2024, 3, 1, 12, 0))


def test_verify_rejects_signed_text_that_does_not_parse(account: LocalAccount) -> None:
    text = message_text(account) + "\n"

    with pytest.raises(SiweParseError):
        verify(text, sign(text, account), now=NOW)


def test_every_siwe_error_is_an_auth_error() -> None:
    errors: list[SiweError] = [
        SiweParseError("bad", line=1, field="header"),
        SiweBadSignature("bad"),
        SiweSignerMismatch(expected=ADDRESS, recovered=ADDRESS),
        SiweDomainMismatch(expected="a", got="b"),
        SiweUriMismatch(expected="a:", got="b:"),
        SiweChainMismatch(expected=1, got=2),
        SiweNonceMismatch(got="abcdefgh"),
        SiweExpired(expired_at=NOW, now=NOW),
        SiweNotYetValid(not_before=NOW, now=NOW),
        SiweIssuedInFuture(issued_at=NOW, now=NOW),
    ]

    for error in errors:
        assert isinstance(error, AuthError)
        assert str(error)
