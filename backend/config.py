"""One Settings object; every knob is an environment variable ``FAIRTIX_*``.

The embedded default profile (SQLite, local IPFS store, sandbox card payments, a local anvil
devnet) needs no configuration at all. Anything that would be a secret in production must come
from the environment: outside ``env=development`` the service refuses to start without it.
"""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


class ConfigError(Exception):
    """Raised when the configuration can't make a working service; the message says what to set."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FAIRTIX_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    log_json: bool = True

    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str = ""  # defaults to http://{host}:{port}

    var_dir: Path = REPO_ROOT / "var"
    database_url: str = ""  # defaults to SQLite under var_dir

    # Chain. "rpc" talks to any EVM JSON-RPC; "eth-tester" runs an in-process chain (tests).
    chain_backend: Literal["rpc", "eth-tester"] = "rpc"
    rpc_url: str = "http://127.0.0.1:8545"
    minter_private_key: SecretStr | None = None
    factory_address: str | None = None
    deployments_dir: Path = REPO_ROOT / "deployments"
    chain_confirmations: int = 0

    # IPFS: local blockstore unless a Kubo RPC API multiaddr is given.
    ipfs_dir: Path | None = None
    ipfs_api: str | None = None

    # Card payments.
    payments_provider: Literal["sandbox", "stripe"] = "sandbox"
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None
    sandbox_webhook_url: str | None = None  # defaults to our own /payments/stripe/webhook
    currency: str = "eur"

    # Sign-In with Ethereum.
    siwe_domain: str = ""  # defaults to host:port
    siwe_uri: str = ""  # defaults to public_base_url
    nonce_ttl_seconds: int = 300
    session_ttl_seconds: int = 24 * 3600
    admin_addresses: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Browser dApps served from another origin (comma-separated, e.g. http://localhost:5173).
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Secret for HMAC-signed queue tokens. Generated and kept under var/ in development.
    secret_key: SecretStr | None = None

    # Sales defaults (per event values override where the event sets them).
    admission_ttl_seconds: int = 600
    max_admitted: int = 100
    max_tickets_per_order: int = 10

    # Background work: in the embedded profile the API process runs the worker loop itself.
    run_worker: bool = True
    worker_poll_seconds: float = 0.2
    outbox_max_attempts: int = 20

    @field_validator("admin_addresses", "cors_origins", mode="before")
    @classmethod
    def _split_addresses(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("admin_addresses")
    @classmethod
    def _lowercase_addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not (address.startswith("0x") and len(address) == 42):
                raise ValueError(f"not an Ethereum address: {address!r}")
            int(address[2:], 16)
        return [address.lower() for address in value]

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.public_base_url:
            self.public_base_url = f"http://{self.host}:{self.port}"
        self.public_base_url = self.public_base_url.rstrip("/")
        if not self.siwe_domain:
            # EIP-4361's domain is the RFC 3986 authority: host[:port], never a path.
            self.siwe_domain = urlsplit(self.public_base_url).netloc
        if not self.siwe_uri:
            self.siwe_uri = self.public_base_url
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'fairtix.db'}"
        if self.ipfs_dir is None:
            self.ipfs_dir = self.var_dir / "ipfs"
        return self

    def check_production_ready(self) -> None:
        """Refuse to start outside development with secrets that would only be safe on a laptop."""
        if self.env != "production":
            return
        missing = []
        if self.secret_key is None:
            missing.append("FAIRTIX_SECRET_KEY")
        if self.minter_private_key is None:
            missing.append("FAIRTIX_MINTER_PRIVATE_KEY")
        if self.payments_provider == "stripe" and self.stripe_secret_key is None:
            missing.append("FAIRTIX_STRIPE_SECRET_KEY")
        if self.payments_provider == "stripe" and self.stripe_webhook_secret is None:
            missing.append("FAIRTIX_STRIPE_WEBHOOK_SECRET")
        if self.payments_provider == "sandbox":
            raise ConfigError(
                "FAIRTIX_PAYMENTS_PROVIDER=sandbox is for development only; set it to 'stripe'"
            )
        if self.database_url.startswith("sqlite"):
            raise ConfigError("production needs FAIRTIX_DATABASE_URL pointing at PostgreSQL")
        if missing:
            raise ConfigError("production needs these environment variables: " + ", ".join(missing))

    @cached_property
    def signing_secret(self) -> bytes:
        """HMAC key for queue tokens: from the environment, or a random one kept under var/."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        if self.env == "production":
            raise ConfigError("FAIRTIX_SECRET_KEY must be set in production")
        path = self.var_dir / "secret_key"
        if not path.exists():
            self.var_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip().encode()
