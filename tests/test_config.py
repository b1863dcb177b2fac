"""Settings: embedded defaults need nothing; production refuses what is only safe on a laptop."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from backend.cli import main
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


def test_siwe_domain_is_the_authority_of_the_public_url() -> None:
    settings = Settings(public_base_url="https://tix.example:8443/api/")
    assert settings.siwe_domain == "tix.example:8443"
    assert settings.public_base_url == "https://tix.example:8443/api"


def test_an_invalid_setting_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAIRTIX_ADMIN_ADDRESSES", "foo")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "fairtix: configuration error: FAIRTIX_ADMIN_ADDRESSES: "
        "Value error, not an Ethereum address: 'foo'"
    )
