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
    # The JSON-RPC URL the web client offers wallets when it adds the chain
    # (wallet_addEthereumChain). Public: never one with an API key in it. Default: rpc_url on the
    # devnet outside production, otherwise none (the wallet must know the chain already).
    web_rpc_url: str = ""
    # Blocks per eth_getLogs range the indexer reads (public RPCs cap the range).
    indexer_max_blocks: int = Field(default=1_000, gt=0)

    # IPFS: local blockstore unless a Kubo RPC API multiaddr is given.
    ipfs_dir: Path | None = None
    ipfs_api: str | None = None

    # Card payments.
    payments_provider: Literal["sandbox", "stripe", "paypal"] = "sandbox"
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None
    # Public: the web client mounts Stripe's Payment Element with it (pk_...); unset, the site
    # shows its own card form (the sandbox's).
    stripe_publishable_key: str = ""
    sandbox_webhook_url: str | None = None  # defaults to our own /payments/stripe/webhook
    # PayPal Orders v2 (REST app credentials and the id of the webhook registered for
    # /payments/paypal/webhook). The API base defaults to PayPal's sandbox outside production.
    paypal_client_id: str | None = None
    paypal_client_secret: SecretStr | None = None
    paypal_webhook_id: str | None = None
    paypal_api_base: str | None = None
    paypal_return_url: str | None = None  # where PayPal sends the buyer after approving
    paypal_cancel_url: str | None = None
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
    admission_ttl_seconds: int = 600  # the waiting room's session duration
    max_admitted: int = 100
    # Waiting room. "sql" keeps it in the database (embedded); "redis" for many API replicas.
    queue_store: Literal["sql", "redis"] = "sql"
    redis_url: str = "redis://127.0.0.1:6379/0"
    queue_redis_prefix: str = "fairtix"  # key prefix, so several deployments can share a Redis
    admissions_per_minute: int = Field(default=600, gt=0)
    # Someone who stops polling or streaming this long loses the slot when it comes (and gets
    # the next one on return).
    queue_grace_seconds: int = Field(default=60, gt=0)
    queue_token_ttl_seconds: int = Field(default=12 * 3600, gt=0)
    queue_stream_interval_seconds: float = Field(default=1.0, gt=0)
    # A stream ends after this long; EventSource reconnects by itself (proxies cut idle streams).
    queue_stream_max_seconds: float = Field(default=300, gt=0)
    max_tickets_per_order: int = 10
    # On-chain event terms, unless an event sets its own.
    default_resale_cap_bps: int = Field(default=11_000, ge=0, le=65_535)
    default_royalty_bps: int = Field(default=500, ge=0, le=10_000)
    default_event_hours: int = Field(default=12, gt=0)
    # Face price on chain for tiers created without price_wei: wei per minor currency unit.
    # A development convenience (3e12 wei per cent is about 3,300 EUR per ether); organizers
    # set price_wei in production.
    wei_per_cent: int = Field(default=3_000_000_000_000, ge=0)
    # How long a card buyer's reservation holds a resale listing while they pay (409
    # listing-reserved to everyone else meanwhile); an unpaid reservation then lapses.
    resale_reservation_seconds: int = Field(default=600, ge=30, le=86_400)

    # Threads an API process runs its database-bound requests on. Few on purpose: they share
    # one interpreter lock, and in bench-onsale 40 (anyio's default) spent more CPU on handing
    # it over than 8 did on waiting for a free thread: 54 vs 67 tickets/s.
    request_threads: int = Field(default=8, ge=1, le=256)

    # Limits per client address and per signed-in wallet (backend.guard), each a `limits`
    # string, "N/second", "N/minute" or "N/hour", several joined by ";". A client address is an
    # IPv4 address or an IPv6 /64; behind a reverse proxy, run uvicorn with --proxy-headers and
    # --forwarded-allow-ips so it is the fan's, not the proxy's. Generous on purpose: many fans
    # can share one address (a campus, a mobile carrier's NAT).
    rate_limits_enabled: bool = True
    # Where counts are kept: "auto" is Redis with the Redis queue store (every replica shares
    # the budget), else this process's memory.
    rate_limit_store: Literal["auto", "memory", "redis"] = "auto"
    rate_limit_per_client: str = "3000/minute"
    rate_limit_sign_in: str = "120/minute;2000/hour"  # POST /auth/nonce and /auth/verify
    rate_limit_per_wallet: str = "600/minute"
    # /door/* (scanner devices), per client address instead of rate_limit_per_client: a venue's
    # gates share one address; 500 scans a second is a 50,000-seat venue's peak with room.
    rate_limit_door: str = "30000/minute"
    max_streams_per_wallet: int = Field(default=3, ge=1, le=1000)  # open queue streams
    max_streams_per_client: int = Field(default=200, ge=1, le=100_000)

    # Background work: in the embedded profile the API process runs the worker loop itself.
    run_worker: bool = True
    worker_poll_seconds: float = 0.2
    outbox_max_attempts: int = 20
    # Threads the worker delivers outbox messages on (webhooks, receipts, refunds): each waits
    # on another system, so a burst of card payments goes out side by side.
    worker_delivery_threads: int = Field(default=8, ge=1, le=64)
    # Card mints: paid orders of one event go out in one mintBatch transaction of up to this many
    # tickets. About 50,000 gas a ticket plus the estimate's 20% margin: 400 is 24M gas, inside a
    # 30M block gas limit.
    mint_batch_max_recipients: int = Field(default=100, ge=1, le=400)
    # A mint transaction not mined this long after it was signed is signed again with the same
    # nonce and fees raised by mint_fee_bump_percent (nodes want at least +10% or +12.5%).
    mint_replace_after_seconds: float = Field(default=60, gt=0)
    mint_fee_bump_percent: float = Field(default=25, ge=12.5, le=1_000)
    # The most a mint transaction offers per gas (max fee, tip, or legacy gas price), first offer
    # and replacements alike: in a fee spike past it batches wait, logged, instead of paying
    # whatever the market asks from the minter's wallet.
    mint_max_fee_per_gas_gwei: float = Field(default=500, gt=0)
    # How long claimed mint messages stay leased to a worker: they are in a stored batch within
    # seconds, so a worker that died holding some frees them soon. Shorter only costs work: a
    # second worker that takes one finds its order locked or minting and leaves it.
    mint_lease_seconds: float = Field(default=30, gt=0)

    # The door (backend.door). Entry codes are shown from this long before the event starts
    # unless the organizer sets another time; a gate may be offline (and upload its scans) for
    # up to door_offline_window_seconds; a scan may say it happened up to
    # door_future_tolerance_seconds ahead of this service's clock (a device clock a little fast).
    door_reveal_seconds: int = Field(default=24 * 3600, ge=0, le=30 * 24 * 3600)
    door_offline_window_seconds: int = Field(default=6 * 3600, ge=60, le=48 * 3600)
    door_future_tolerance_seconds: int = Field(default=120, ge=0, le=3600)
    # Check-ins go on chain in batches of up to this many tickets per transaction, the worker
    # holding a batch's admissions for door_checkin_lease_seconds while it sends it.
    door_checkin_batch: int = Field(default=200, ge=1, le=1000)
    door_checkin_lease_seconds: float = Field(default=120, gt=0)

    # Outgoing webhooks (backend.notify): deliveries are retried up to outbox_max_attempts.
    webhook_timeout_seconds: float = Field(default=10, gt=0)
    # Hosts (names or IP literals, comma-separated) webhook URLs may name although they are or
    # resolve to private/loopback addresses; outside development those are refused otherwise.
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Order receipts by e-mail; without smtp_host they are recorded as skipped.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, gt=0, le=65_535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "fairtix <no-reply@fairtix.invalid>"
    smtp_starttls: bool = True
    smtp_timeout_seconds: float = Field(default=10, gt=0)

    # Metrics (docs/operations-metrics.md). With a token, GET /metrics (and the worker's
    # endpoint) want "Authorization: Bearer <token>"; without one they answer loopback clients
    # only, and in production they are off.
    metrics_token: SecretStr | None = None
    # Gauges read from the database are read at most this often, however many scrapes come.
    metrics_cache_seconds: float = Field(default=5, ge=0)
    # `fairtix worker` serves its own metrics here when a port is set (0: any free port).
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int | None = Field(default=None, ge=0, le=65_535)

    @field_validator("admin_addresses", "cors_origins", "webhook_allowed_hosts", mode="before")
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

    @field_validator(
        "rate_limit_per_client", "rate_limit_sign_in", "rate_limit_per_wallet", "rate_limit_door"
    )
    @classmethod
    def _valid_rate_limit(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(
                f"{value!r} is not a rate limit: write e.g. '600/minute' or '10/second;300/hour'"
            ) from exc
        return value

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
        if self.rate_limit_store == "auto":
            self.rate_limit_store = "redis" if self.queue_store == "redis" else "memory"
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
        if self.payments_provider == "paypal":
            if self.paypal_client_id is None:
                missing.append("FAIRTIX_PAYPAL_CLIENT_ID")
            if self.paypal_client_secret is None:
                missing.append("FAIRTIX_PAYPAL_CLIENT_SECRET")
            if self.paypal_webhook_id is None:
                missing.append("FAIRTIX_PAYPAL_WEBHOOK_ID")
            if self.paypal_api_base is None:
                missing.append("FAIRTIX_PAYPAL_API_BASE")
        if self.payments_provider == "sandbox":
            raise ConfigError(
                "FAIRTIX_PAYMENTS_PROVIDER=sandbox is for development only; "
                "set it to 'stripe' or 'paypal'"
            )
        if self.smtp_user is not None and not self.smtp_starttls:
            raise ConfigError(
                "FAIRTIX_SMTP_USER is set with FAIRTIX_SMTP_STARTTLS off: the SMTP password "
                "would cross the network in clear"
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

    @property
    def mint_fee_ceiling_wei(self) -> int:
        """``mint_max_fee_per_gas_gwei`` in wei, the unit transactions carry."""
        return int(self.mint_max_fee_per_gas_gwei * 10**9)
