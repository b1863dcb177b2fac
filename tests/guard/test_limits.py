"""Rate limits and stream caps on both stores: Redis, shared by every replica, and memory."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.config import Settings
from backend.guard.errors import RateLimited, TooManyStreams
from backend.guard.limits import RateLimits, client_key
from tests.queue.conftest import REDIS_URL, drop_prefix, redis_or_skip


def _settings(tmp_path: Path, **fields: object) -> Settings:
    return Settings(
        env="test",
        var_dir=tmp_path,
        rate_limit_sign_in="3/minute",
        rate_limit_per_wallet="4/minute",
        max_streams_per_wallet=2,
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    client = redis_or_skip()
    prefix = f"fairtix-limits-{secrets.token_hex(6)}"
    yield prefix
    drop_prefix(client, prefix)
    client.close()


def test_two_replicas_on_redis_share_one_budget(tmp_path: Path, redis_prefix: str) -> None:
    settings = _settings(
        tmp_path, queue_store="redis", redis_url=REDIS_URL, queue_redis_prefix=redis_prefix
    )
    assert settings.rate_limit_store == "redis"
    replicas = [RateLimits(settings), RateLimits(settings)]
    for n in range(3):
        replicas[n % 2].check_client("198.51.100.7", "/auth/nonce")
    for replica in replicas:
        with pytest.raises(RateLimited) as refused:
            replica.check_client("198.51.100.7", "/auth/nonce")
        assert 1 <= refused.value.retry_after <= 60
    replicas[0].check_client("198.51.100.8", "/auth/nonce")  # another address: its own budget


def test_stream_slots_on_redis_are_shared_and_given_back(tmp_path: Path, redis_prefix: str) -> None:
    settings = _settings(
        tmp_path, queue_store="redis", redis_url=REDIS_URL, queue_redis_prefix=redis_prefix
    )
    a, b = RateLimits(settings), RateLimits(settings)
    first = a.hold_stream("198.51.100.7", "0xfan")
    second = b.hold_stream("198.51.100.7", "0xfan")
    with pytest.raises(TooManyStreams):
        a.hold_stream("198.51.100.9", "0xfan")
    second.release()
    second.release()  # twice is once
    third = a.hold_stream("198.51.100.9", "0xfan")
    first.release()
    third.release()


def test_wallet_limit_in_memory(tmp_path: Path) -> None:
    limits = RateLimits(_settings(tmp_path))
    for _ in range(4):
        limits.check_wallet("0xfan")
    with pytest.raises(RateLimited, match="one wallet"):
        limits.check_wallet("0xfan")
    limits.check_wallet("0xother")


def test_limits_fail_open_when_redis_is_down(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, queue_store="redis", redis_url="redis://127.0.0.1:1/0", queue_redis_prefix="x"
    )
    limits = RateLimits(settings)
    for _ in range(10):
        limits.check_client("198.51.100.7", "/auth/nonce")
    limits.hold_stream("198.51.100.7", "0xfan").release()


def test_probes_and_webhooks_are_never_limited(tmp_path: Path) -> None:
    limits = RateLimits(_settings(tmp_path, rate_limit_per_client="1/minute"))
    for _ in range(5):
        limits.check_client("198.51.100.7", "/livez")
        limits.check_client("198.51.100.7", "/payments/stripe/webhook")


def test_ipv6_clients_share_their_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2")
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:198.51.100.7") == "198.51.100.7"
    assert client_key(None) == "unknown"
