"""Settings: embedded defaults need nothing; production refuses what is only safe on a laptop."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from backend.config import ConfigError, Settings


def test_embedded_defaults_need_no_configuration(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'fairtix.db'}"
    assert settings.siwe_domain == "127.0.0.1:8000"
    assert settings.siwe_uri == "http://127.0.0.1:8000"
    settings.check_production_ready()  # development: nothing to refuse


def test_development_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = Settings(var_dir=tmp_path).signing_secret
    assert first == Settings(var_dir=tmp_path).signing_secret
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_admin_addresses_come_from_a_comma_separated_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = "0x" + "Ab" * 20, "0x" + "cd" * 20
    monkeypatch.setenv("FAIRTIX_ADMIN_ADDRESSES", f"{a}, {b}")
    assert Settings().admin_addresses == [a.lower(), b]
    monkeypatch.setenv("FAIRTIX_ADMIN_ADDRESSES", "not-an-address")
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({}, "sandbox"),
        ({"payments_provider": "stripe"}, "PostgreSQL"),
        (
            {"payments_provider": "stripe", "database_url": "postgresql://db/fairtix"},
            "FAIRTIX_SECRET_KEY",
        ),
    ],
)
def test_production_refuses_laptop_settings(overrides: dict[str, str], complaint: str) -> None:
    settings = Settings(env="production", **overrides)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=complaint):
        settings.check_production_ready()
    with pytest.raises(ConfigError):
        _ = Settings(env="production").signing_secret


def test_cors_origins_come_from_a_comma_separated_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAIRTIX_CORS_ORIGINS", "http://localhost:5173, https://tix.example")
    assert Settings().cors_origins == ["http://localhost:5173", "https://tix.example"]
