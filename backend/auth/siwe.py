"""Sign-In with Ethereum (EIP-4361): parse, serialise and verify sign-in messages.

A pure library: no I/O, no HTTP, no database. The router issues a nonce, the wallet signs a
message built from it, and :func:`verify` decides whether that signed message proves control of
its address for this relying party right now.

Parsing follows the ABNF of EIP-4361 (revision of September 2023, with the optional
``scheme://`` prefix) and the RFC 3986 / RFC 3339 rules it imports. Where the ABNF admits text
that this module cannot represent faithfully, the text is rejected rather than silently
normalised, so that ``to_text(parse_message(t)) == t`` holds for every accepted ``t``:

* a Chain ID with leading zeros (``01``), since the field is an ``int``.

A ``Resources:`` line followed by no resource is accepted (the ABNF's ``*( LF "- " URI )``
allows zero, and the ``siwe`` npm package writes exactly that for ``resources: []``); it is kept
as ``resources_line=True`` so the text still round-trips.

The reference test suite settles two points the ABNF leaves loose, and this module follows it:

* the domain must have a non-empty host (RFC 3986 allows an empty ``reg-name``);
* the address must be EIP-55 checksummed exactly: all-lowercase is rejected, and so is an
  uppercase ``0X`` prefix.
"""

from __future__ import annotations

import hmac
import re
from calendar import monthrange
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address

from backend.auth.errors import (
    SiweBadSignature,
    SiweChainMismatch,
    SiweDomainMismatch,
    SiweExpired,
    SiweIssuedInFuture,
    SiweNonceMismatch,
    SiweNotYetValid,
    SiweParseError,
    SiweSignerMismatch,
    SiweUriMismatch,
)

__all__ = [
    "CLOCK_SKEW",
    "SECP256K1_N",
    "SiweMessage",
    "parse_message",
    "verify",
]

CLOCK_SKEW: Final = timedelta(seconds=60)
"""Tolerance for the signer's clock running ahead of ours (Issued At and Not Before only)."""

SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_SECP256K1_HALF_N: Final = SECP256K1_N // 2
# Chain IDs appear in uint256 contexts (EIP-155 v, EIP-712 domains); larger ones are nonsense.
_MAX_CHAIN_ID: Final = 2**256 - 1
_MAX_CHAIN_ID_DIGITS: Final = len(str(_MAX_CHAIN_ID))

_HEADER_SUFFIX: Final = " wants you to sign in with your Ethereum account:"
_VERSION: Final = "1"

# ---------------------------------------------------------------------------------------------
# RFC 3986 grammar, as regular expressions. Character classes are spelt out in ASCII because
# Python's \d and \w also match non-ASCII digits and letters.
# ---------------------------------------------------------------------------------------------

_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT_ENCODED = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT_ENCODED})"
_SCHEME = r"[A-Za-z][A-Za-z0-9+\-.]*"
_USERINFO = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT_ENCODED})*"
_DEC_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9][0-9]|[0-9])"
_IPV4 = rf"{_DEC_OCTET}(?:\.{_DEC_OCTET}){{3}}"
_H16 = r"[0-9A-Fa-f]{1,4}"
_LS32 = rf"(?:{_H16}:{_H16}|{_IPV4})"
_IPV6 = (
    "(?:"
    + "|".join(
        [
            rf"(?:{_H16}:){{6}}{_LS32}",
            rf"::(?:{_H16}:){{5}}{_LS32}",
            rf"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
            rf"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
            rf"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
            rf"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
            rf"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
            rf"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
            rf"(?:(?:{_H16}:){{0,6}}{_H16})?::",
        ]
    )
    + ")"
)
_IPVFUTURE = rf"[vV][0-9A-Fa-f]+\.[{_UNRESERVED}{_SUB_DELIMS}:]+"
# IPv4address needs no branch of its own: every IPv4 address is also a valid reg-name.
_HOST = rf"(?:\[(?:{_IPV6}|{_IPVFUTURE})\]|(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT_ENCODED})*)"
_AUTHORITY = rf"(?:{_USERINFO}@)?(?P<host>{_HOST})(?::[0-9]*)?"
_SEGMENT = rf"{_PCHAR}*"
_SEGMENT_NZ = rf"{_PCHAR}+"
_HIER_PART = (
    rf"(?://{_AUTHORITY}(?:/{_SEGMENT})*"  # "//" authority path-abempty
    rf"|/(?:{_SEGMENT_NZ}(?:/{_SEGMENT})*)?"  # path-absolute
    rf"|{_SEGMENT_NZ}(?:/{_SEGMENT})*"  # path-rootless
    r"|)"  # path-empty
)
_QUERY_OR_FRAGMENT = rf"(?:{_PCHAR}|[/?])*"

_SCHEME_RE = re.compile(_SCHEME)
_AUTHORITY_RE = re.compile(_AUTHORITY)
_URI_RE = re.compile(
    rf"{_SCHEME}:{_HIER_PART}(?:\?{_QUERY_OR_FRAGMENT})?(?:#{_QUERY_OR_FRAGMENT})?"
)
_REQUEST_ID_RE = re.compile(rf"{_PCHAR}*")

# EIP-4361 field grammars.
_ADDRESS_RE = re.compile(r"0x[0-9A-Fa-f]{40}")
_STATEMENT_CHAR_RE = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;= ]")
_CHAIN_ID_RE = re.compile(r"[0-9]+")
_NONCE_RE = re.compile(r"[A-Za-z0-9]{8,}")

# RFC 3339 date-time. "T" and "Z" are case-insensitive there (RFC 3339 section 5.6, note).
_DATE_TIME_RE = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})[Tt]"
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?"
    r"(?:(?P<zulu>[Zz])|(?P<sign>[+-])(?P<offset_hour>[0-9]{2}):(?P<offset_minute>[0-9]{2}))"
)

_SIGNATURE_RE = re.compile(r"0x[0-9A-Fa-f]*")


class _Invalid(Exception):
    """A field value breaks its grammar; the caller adds where it was found."""


_Check = Callable[[Any], object]


# ---------------------------------------------------------------------------------------------
# Field validators. Each raises _Invalid with a reason a person can act on.
# ---------------------------------------------------------------------------------------------


def _check_scheme(value: str) -> None:
    if _SCHEME_RE.fullmatch(value) is None:
        raise _Invalid(f"{value!r} is not an RFC 3986 scheme")


def _check_domain(value: str) -> None:
    match = _AUTHORITY_RE.fullmatch(value)
    if match is None:
        raise _Invalid(f"{value!r} is not an RFC 3986 authority ([userinfo@]host[:port])")
    # RFC 3986 lets a reg-name be empty, but a sign-in for no host at all is never meant.
    if not match.group("host"):
        raise _Invalid(f"{value!r} has an empty host")


def _check_address(value: str) -> None:
    if _ADDRESS_RE.fullmatch(value) is None:
        raise _Invalid(f"{value!r} is not 0x followed by 40 hexadecimal digits")
    checksummed = to_checksum_address(value)
    if value != checksummed:
        raise _Invalid(f"{value!r} is not EIP-55 checksummed (expected {checksummed})")


def _check_statement(value: str) -> None:
    for column, char in enumerate(value, start=1):
        if _STATEMENT_CHAR_RE.fullmatch(char) is None:
            raise _Invalid(
                f"character {char!r} at column {column} is not allowed in a statement "
                "(only RFC 3986 reserved and unreserved characters and spaces are)"
            )


def _check_uri(value: str) -> None:
    if _URI_RE.fullmatch(value) is None:
        raise _Invalid(f"{value!r} is not an RFC 3986 URI")


def _check_version(value: str) -> None:
    if value != _VERSION:
        raise _Invalid(f"version {value!r} is not supported (must be {_VERSION!r})")


def _parse_chain_id(value: str) -> int:
    if _CHAIN_ID_RE.fullmatch(value) is None:
        raise _Invalid(f"{value!r} is not a decimal number")
    if len(value) > 1 and value.startswith("0"):
        raise _Invalid(f"{value!r} has leading zeros")
    if len(value) > _MAX_CHAIN_ID_DIGITS or int(value) > _MAX_CHAIN_ID:
        raise _Invalid(f"{value!r} does not fit in 256 bits")
    return int(value)


def _check_chain_id(value: int) -> None:
    # bool is an int subclass, and True would serialise as "True".
    if isinstance(value, bool) or not 0 <= value <= _MAX_CHAIN_ID:
        raise _Invalid(f"{value!r} is not a chain ID between 0 and 2**256 - 1")


def _check_nonce(value: str) -> None:
    if _NONCE_RE.fullmatch(value) is None:
        raise _Invalid(f"{value!r} is not at least 8 ASCII letters and digits")


def _check_request_id(value: str) -> None:
    if _REQUEST_ID_RE.fullmatch(value) is None:
        raise _Invalid(f"{value!r} is not a sequence of RFC 3986 pchar")


def _parse_date_time(value: str) -> datetime:
    """Parse an RFC 3339 date-time into an aware UTC datetime, checking the calendar."""
    match = _DATE_TIME_RE.fullmatch(value)
    if match is None:
        raise _Invalid(f"{value!r} is not an RFC 3339 date-time such as 2021-09-30T16:25:24Z")
    year, month, day = (int(match.group(name)) for name in ("year", "month", "day"))
    hour, minute, second = (int(match.group(name)) for name in ("hour", "minute", "second"))
    if year == 0:
        raise _Invalid(f"{value!r}: year 0000 cannot be represented")
    if not 1 <= month <= 12:
        raise _Invalid(f"{value!r}: there is no month {month:02d}")
    if not 1 <= day <= monthrange(year, month)[1]:
        raise _Invalid(f"{value!r}: {year:04d}-{month:02d} has no day {day:02d}")
    if hour > 23 or minute > 59 or second > 60:
        raise _Invalid(f"{value!r}: {hour:02d}:{minute:02d}:{second:02d} is not a time of day")

    if match.group("zulu"):
        tz = UTC
    else:
        offset_hour, offset_minute = (
            int(match.group("offset_hour")),
            int(match.group("offset_minute")),
        )
        if offset_hour > 23 or offset_minute > 59:
            raise _Invalid(f"{value!r}: the UTC offset is out of range")
        offset = timedelta(hours=offset_hour, minutes=offset_minute)
        tz = timezone(-offset if match.group("sign") == "-" else offset)

    fraction = match.group("fraction") or ""
    # datetime keeps microseconds; finer digits only matter for re-serialisation, which uses
    # the original string.
    microsecond = int(fraction[:6].ljust(6, "0"))
    leap_second = second == 60
    try:
        instant = datetime(
            year, month, day, hour, minute, 59 if leap_second else second, microsecond, tzinfo=tz
        ).astimezone(UTC)
        if leap_second:
            # RFC 3339 section 5.7: a leap second can only be 23:59:60 UTC at the end of a month.
            if (instant.hour, instant.minute) != (23, 59) or (instant + timedelta(days=1)).day != 1:
                raise _Invalid(f"{value!r}: second 60 is only valid at 23:59:60 UTC on a month end")
            # datetime has no second 60; count it as the first instant after 23:59:59.
            instant += timedelta(seconds=1)
    except OverflowError:
        raise _Invalid(f"{value!r} is outside the representable date range") from None
    return instant


# ---------------------------------------------------------------------------------------------
# The message
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SiweMessage:
    """One EIP-4361 message. Constructing one validates every field against the ABNF.

    Date-time fields keep the exact RFC 3339 text of the message, so that the message can be
    re-serialised byte for byte; ``issued_at_dt`` and friends give the instants they denote.
    """

    domain: str
    address: str
    statement: str | None
    uri: str
    version: str
    chain_id: int
    nonce: str
    issued_at: str
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = ()
    scheme: str | None = None
    # A "Resources:" line with no resource after it (what siwe writes for `resources: []`).
    resources_line: bool = False

    def __post_init__(self) -> None:
        checks: list[tuple[str, _Check, object]] = [
            ("domain", _check_domain, self.domain),
            ("address", _check_address, self.address),
            ("URI", _check_uri, self.uri),
            ("Version", _check_version, self.version),
            ("Chain ID", _check_chain_id, self.chain_id),
            ("Nonce", _check_nonce, self.nonce),
            ("Issued At", _parse_date_time, self.issued_at),
        ]
        optional: list[tuple[str, _Check, object | None]] = [
            ("scheme", _check_scheme, self.scheme),
            ("statement", _check_statement, self.statement),
            ("Expiration Time", _parse_date_time, self.expiration_time),
            ("Not Before", _parse_date_time, self.not_before),
            ("Request ID", _check_request_id, self.request_id),
        ]
        checks += [(name, check, value) for name, check, value in optional if value is not None]
        checks += [("Resources", _check_uri, resource) for resource in self.resources]
        for field, check, value in checks:
            try:
                check(value)
            except _Invalid as exc:
                raise SiweParseError(str(exc), field=field) from None

    def to_text(self) -> str:
        """Serialise exactly as the EIP-4361 ABNF lays the message out."""
        origin = self.domain if self.scheme is None else f"{self.scheme}://{self.domain}"
        lines = [f"{origin}{_HEADER_SUFFIX}", self.address, ""]
        if self.statement is not None:
            lines.append(self.statement)
        lines += [
            "",
            f"URI: {self.uri}",
            f"Version: {self.version}",
            f"Chain ID: {self.chain_id}",
            f"Nonce: {self.nonce}",
            f"Issued At: {self.issued_at}",
        ]
        if self.expiration_time is not None:
            lines.append(f"Expiration Time: {self.expiration_time}")
        if self.not_before is not None:
            lines.append(f"Not Before: {self.not_before}")
        if self.request_id is not None:
            lines.append(f"Request ID: {self.request_id}")
        if self.resources or self.resources_line:
            lines.append("Resources:")
            lines += [f"- {resource}" for resource in self.resources]
        return "\n".join(lines)

    @property
    def issued_at_dt(self) -> datetime:
        """Issued At as an aware datetime in UTC."""
        return _parse_date_time(self.issued_at)

    @property
    def expiration_dt(self) -> datetime | None:
        """Expiration Time as an aware datetime in UTC, or None when the message has none."""
        return None if self.expiration_time is None else _parse_date_time(self.expiration_time)

    @property
    def not_before_dt(self) -> datetime | None:
        """Not Before as an aware datetime in UTC, or None when the message has none."""
        return None if self.not_before is None else _parse_date_time(self.not_before)


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------

# Tagged fields in the only order the ABNF allows; used to name an out-of-place line.
_TAGS: Final = (
    "URI",
    "Version",
    "Chain ID",
    "Nonce",
    "Issued At",
    "Expiration Time",
    "Not Before",
    "Request ID",
    "Resources",
)


class _Lines:
    def __init__(self, text: str) -> None:
        # Only LF ends a line: a CR is part of the line and will fail its field's grammar.
        self._lines = text.split("\n")
        self._index = 0

    @property
    def number(self) -> int:
        """1-based number of the next line."""
        return self._index + 1

    def peek(self) -> str | None:
        return self._lines[self._index] if self._index < len(self._lines) else None

    def next_is_last(self) -> bool:
        return self._index == len(self._lines) - 1

    def take(self, expected: str) -> str:
        line = self.peek()
        if line is None:
            raise SiweParseError(f"message ends where {expected} was expected", line=self.number)
        self._index += 1
        return line

    def take_blank(self, after: str, hint: str = "") -> None:
        number = self.number
        line = self.take(f"the empty line after the {after}")
        if line != "":
            raise SiweParseError(
                f"expected an empty line after the {after}, got {line!r}{hint}", line=number
            )


def _tag_of(line: str) -> str | None:
    return next((tag for tag in _TAGS if line.startswith(f"{tag}:")), None)


def _take_tagged(lines: _Lines, tag: str) -> tuple[str, int]:
    number = lines.number
    line = lines.take(f"the {tag!r} line")
    prefix = f"{tag}: "
    if not line.startswith(prefix):
        found = _tag_of(line)
        if found is not None and found != tag:
            reason = (
                f"found the {found!r} line where {tag!r} was expected (fields are out of order)"
            )
        else:
            reason = f"expected a line starting with {prefix!r}, got {line!r}"
        raise SiweParseError(reason, line=number, field=tag)
    return line[len(prefix) :], number


def _optional_tagged(lines: _Lines, tag: str) -> tuple[str, int] | None:
    line = lines.peek()
    if line is None or not line.startswith(f"{tag}: "):
        return None
    return _take_tagged(lines, tag)


def _validated(check: _Check, value: str, field: str, line: int) -> None:
    try:
        check(value)
    except _Invalid as exc:
        raise SiweParseError(str(exc), line=line, field=field) from None


def parse_message(text: str) -> SiweMessage:
    """Parse an EIP-4361 message, rejecting anything the ABNF does not produce.

    Raises :class:`SiweParseError` naming the line and field at fault.
    """
    lines = _Lines(text)

    header = lines.take("the header")
    if not header.endswith(_HEADER_SUFFIX):
        raise SiweParseError(
            f"expected '[scheme://]domain{_HEADER_SUFFIX}', got {header!r}", line=1, field="header"
        )
    origin = header[: -len(_HEADER_SUFFIX)]
    # An authority cannot contain "/", so a "://" can only end a scheme.
    scheme: str | None = None
    if "://" in origin:
        scheme, origin = origin.split("://", 1)
        _validated(_check_scheme, scheme, "scheme", 1)
    _validated(_check_domain, origin, "domain", 1)

    address_line = lines.number
    address = lines.take("the address")
    _validated(_check_address, address, "address", address_line)
    lines.take_blank("address")

    # After the address's blank line the ABNF reads `[ statement LF ] LF "URI: "`: a statement
    # (possibly empty) is followed by a blank line, and no statement leaves just one.
    statement: str | None = None
    statement_line = lines.number
    first = lines.take("a statement or an empty line")
    if first == "":
        if lines.peek() == "":
            statement = ""
            lines.take_blank("empty statement")
    else:
        statement = first
        _validated(_check_statement, statement, "statement", statement_line)
        if statement.startswith("URI: ") or (lines.peek() or "").startswith("URI: "):
            hint = " (is the empty line before 'URI: ' missing?)"
        else:
            hint = " (a statement must fit on one line)"
        lines.take_blank("statement", hint)

    uri, number = _take_tagged(lines, "URI")
    _validated(_check_uri, uri, "URI", number)
    version, number = _take_tagged(lines, "Version")
    _validated(_check_version, version, "Version", number)
    chain_id_text, number = _take_tagged(lines, "Chain ID")
    try:
        chain_id = _parse_chain_id(chain_id_text)
    except _Invalid as exc:
        raise SiweParseError(str(exc), line=number, field="Chain ID") from None
    nonce, number = _take_tagged(lines, "Nonce")
    _validated(_check_nonce, nonce, "Nonce", number)
    issued_at, number = _take_tagged(lines, "Issued At")
    _validated(_parse_date_time, issued_at, "Issued At", number)

    optional: dict[str, str | None] = {}
    optional_checks: tuple[tuple[str, _Check], ...] = (
        ("Expiration Time", _parse_date_time),
        ("Not Before", _parse_date_time),
        ("Request ID", _check_request_id),
    )
    for tag, check in optional_checks:
        found = _optional_tagged(lines, tag)
        if found is not None:
            _validated(check, found[0], tag, found[1])
        optional[tag] = None if found is None else found[0]

    resources: list[str] = []
    resources_line = lines.peek() == "Resources:"
    if resources_line:
        lines.take("the 'Resources:' line")
        while (line := lines.peek()) is not None and line.startswith("- "):
            number = lines.number
            lines.take("a resource")
            _validated(_check_uri, line[2:], "Resources", number)
            resources.append(line[2:])

    trailing = lines.peek()
    if trailing is not None:
        found_tag = _tag_of(trailing)
        if trailing == "":
            reason = "unexpected empty line"
            if lines.next_is_last():
                reason += " (the message must not end with a line break)"
        elif found_tag is None:
            reason = f"unexpected line {trailing!r}"
        elif trailing == "Resources:" or trailing.startswith(f"{found_tag}: "):
            reason = f"the {found_tag!r} line is out of order or repeated"
        else:
            reason = f"malformed {found_tag!r} line {trailing!r}"
        raise SiweParseError(reason, line=lines.number)

    return SiweMessage(
        domain=origin,
        address=address,
        statement=statement,
        uri=uri,
        version=version,
        chain_id=chain_id,
        nonce=nonce,
        issued_at=issued_at,
        expiration_time=optional["Expiration Time"],
        not_before=optional["Not Before"],
        request_id=optional["Request ID"],
        resources=tuple(resources),
        scheme=scheme,
        resources_line=resources_line and not resources,
    )


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------


def _recover_signer(text: str, signature: str) -> str:
    if _SIGNATURE_RE.fullmatch(signature) is None:
        raise SiweBadSignature("expected 0x-prefixed hexadecimal")
    digits = signature[2:]
    if len(digits) != 130:
        raise SiweBadSignature(f"expected 65 bytes (130 hex digits), got {len(digits)} hex digits")
    raw = bytes.fromhex(digits)
    r = int.from_bytes(raw[:32], "big")
    s = int.from_bytes(raw[32:64], "big")
    v = raw[64]
    if v in (27, 28):
        v -= 27
    elif v not in (0, 1):
        raise SiweBadSignature(f"recovery byte v is {v}, expected 0, 1, 27 or 28")
    if not 0 < r < SECP256K1_N:
        raise SiweBadSignature("r is outside 1..n-1")
    if s == 0:
        raise SiweBadSignature("s is zero")
    # (r, n - s) verifies as well as (r, s); accepting only low s gives each signature one
    # encoding, as Ethereum transactions have required since Homestead (EIP-2).
    if s > _SECP256K1_HALF_N:
        raise SiweBadSignature("s is in the upper half of the curve order (malleable signature)")
    try:
        signer: str = Account.recover_message(encode_defunct(text=text), vrs=(v, r, s))
    except BadSignature:
        raise SiweBadSignature("no public key can be recovered from it") from None
    return signer


def verify(
    text: str,
    signature: str,
    *,
    domain: str | None = None,
    nonce: str | None = None,
    now: datetime | None = None,
    chain_id: int | None = None,
    uri: str | None = None,
) -> SiweMessage:
    """Check that ``signature`` is the message's address signing ``text`` and that it applies here.

    ``text`` is parsed strictly; the EIP-191 ``personal_sign`` signature must recover exactly the
    message's address; each of ``domain``, ``nonce``, ``chain_id`` and ``uri`` that is given must
    equal the message's; and at ``now`` (default: the current time) the message must be issued,
    not expired, and past its Not Before time. Issued At and Not Before get :data:`CLOCK_SKEW`
    of tolerance, Expiration Time none.

    Returns the parsed message; raises a :class:`~backend.auth.errors.SiweError` subclass
    naming the first check that failed.
    """
    if now is None:
        now = datetime.now(UTC)
    elif now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")

    message = parse_message(text)

    recovered = _recover_signer(text, signature)
    if recovered != message.address:
        raise SiweSignerMismatch(expected=message.address, recovered=recovered)

    if domain is not None and message.domain != domain:
        raise SiweDomainMismatch(expected=domain, got=message.domain)
    if uri is not None and message.uri != uri:
        raise SiweUriMismatch(expected=uri, got=message.uri)
    if chain_id is not None and message.chain_id != chain_id:
        raise SiweChainMismatch(expected=chain_id, got=message.chain_id)
    # compare_digest does not stop at the first differing byte, so response times cannot tell
    # an attacker how much of a guessed nonce was right.
    if nonce is not None and not hmac.compare_digest(
        message.nonce.encode("utf-8"), nonce.encode("utf-8")
    ):
        raise SiweNonceMismatch(got=message.nonce)

    expiration = message.expiration_dt
    if expiration is not None and now >= expiration:
        raise SiweExpired(expired_at=expiration, now=now)
    not_before = message.not_before_dt
    if not_before is not None and now + CLOCK_SKEW < not_before:
        raise SiweNotYetValid(not_before=not_before, now=now)
    issued_at = message.issued_at_dt
    if now + CLOCK_SKEW < issued_at:
        raise SiweIssuedInFuture(issued_at=issued_at, now=now)

    return message
