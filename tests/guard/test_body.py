"""The body checks on raw bytes: nesting, NUL characters, and the route limits."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.guard.body import (
    DEFAULT_LIMIT,
    check_depth,
    check_no_nul,
    check_path_and_query,
    limit_for,
)
from backend.guard.errors import BodyTooDeep, NulCharacter


def test_check_depth_refuses_nesting_past_the_limit() -> None:
    check_depth(b"[" * 16 + b"]" * 16, 16)
    with pytest.raises(BodyTooDeep):
        check_depth(b"[" * 17 + b"]" * 17, 16)
    with pytest.raises(BodyTooDeep):
        check_depth(b'{"a":' * 17 + b"1" + b"}" * 17, 16)


def test_check_depth_ignores_brackets_inside_strings() -> None:
    body = json.dumps({"message": "[" * 1000 + '\\"{' * 500}).encode()
    check_depth(body, 2)


def test_check_depth_refuses_the_body_that_crashed_the_api() -> None:
    with pytest.raises(BodyTooDeep):
        check_depth(b"[" * 100_000 + b"]" * 100_000, DEFAULT_LIMIT.max_depth)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab:,'),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\ab'), children, max_size=3)
    ),
    max_leaves=30,
)


@given(json_values)
def test_check_depth_agrees_with_the_parsed_depth(value: object) -> None:
    body = json.dumps(value).encode()
    depth = _depth(value)
    check_depth(body, depth)
    if depth > 0:
        with pytest.raises(BodyTooDeep):
            check_depth(body, depth - 1)


@pytest.mark.parametrize(
    "body", [b'{"name": "a\\u0000b"}', b'{"name": "\\\\\\u0000"}', b'{"a": 1}\x00']
)
def test_check_no_nul_refuses_a_nul_raw_or_escaped(body: bytes) -> None:
    with pytest.raises(NulCharacter):
        check_no_nul(body)


def test_check_no_nul_lets_an_escaped_backslash_before_u0000_through() -> None:
    # The text \u0000 itself (a backslash, then "u0000"), which PostgreSQL stores fine.
    check_no_nul(b'{"name": "\\\\u0000"}')


@pytest.mark.parametrize(
    ("path", "query"),
    [("/sandbox/payment_intents/pi\x00x/confirm", b""), ("/events", b"limit=1%00")],
)
def test_nul_in_path_or_query_is_refused(path: str, query: bytes) -> None:
    with pytest.raises(NulCharacter):
        check_path_and_query(path, query)


def test_webhooks_take_larger_bodies_than_other_routes() -> None:
    assert limit_for("/payments/stripe/webhook").max_bytes > DEFAULT_LIMIT.max_bytes
    assert limit_for("/auth/verify") == DEFAULT_LIMIT
