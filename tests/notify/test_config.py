"""Notification settings: the webhook allow-list and SMTP credentials in production."""

from __future__ import annotations

import pytest

from backend.config import ConfigError, Settings
from backend.notify.service import check_url


def production(**fields: object) -> Settings:
    return Settings(
        env="production",
        secret_key="s" * 32,  # type: ignore[arg-type]
        minter_private_key="0x" + "1" * 64,  # type: ignore[arg-type]
        payments_provider="stripe",
        stripe_secret_key="sk_live_x",  # type: ignore[arg-type]
        stripe_webhook_secret="whsec_x",  # type: ignore[arg-type]
        database_url="postgresql://fairtix@db/fairtix",
        **fields,  # type: ignore[arg-type]
    )


def test_allowed_hosts_are_read_comma_separated() -> None:
    settings = Settings(webhook_allowed_hosts="127.0.0.1, Hooks.Internal ,")  # type: ignore[arg-type]
    assert settings.webhook_allowed_hosts == ["127.0.0.1", "Hooks.Internal"]
    assert check_url(
        "http://hooks.internal:8080/x", production(**{"webhook_allowed_hosts": ["Hooks.Internal"]})
    )


def test_development_allows_private_hosts_without_a_list() -> None:
    assert check_url("http://127.0.0.1:9/x", Settings(env="development")) == "http://127.0.0.1:9/x"


def test_production_refuses_smtp_login_without_starttls() -> None:
    with pytest.raises(ConfigError, match="FAIRTIX_SMTP_STARTTLS"):
        production(
            smtp_host="mail.example.org", smtp_user="u", smtp_starttls=False
        ).check_production_ready()
    production(smtp_host="mail.example.org", smtp_user="u").check_production_ready()
