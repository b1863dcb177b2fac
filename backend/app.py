"""create_app(): all wiring happens here and nowhere else."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy import text

from backend import __version__
from backend.account.router import router as account_router
from backend.auth.router import router as auth_router
from backend.catalog.router import router as catalog_router
from backend.chain.client import ChainClient, connect_rpc
from backend.chain.deploy import deploy_factory_if_needed, load_deployment
from backend.chain.devnet import DEVNET_CHAIN_ID, devnet_account
from backend.config import ConfigError, Settings
from backend.db.engine import make_engine, make_session_factory
from backend.db.migrate import upgrade_to_head
from backend.door.fast_lane import DoorFastLane
from backend.door.router import router as door_router
from backend.fulfilment.nonces import NonceFloor
from backend.gc_tuning import tune_for_service, untune
from backend.guard.install import install_guard
from backend.guard.recursion import cap_recursion_limit
from backend.ipfs.blockstore import make_blockstore
from backend.ipfs.router import router as ipfs_router
from backend.notify.router import router as notify_router
from backend.observability.install import install_metrics
from backend.payments.paypal import SANDBOX_API, PayPalProvider
from backend.payments.provider import PaymentProvider, StripeProvider
from backend.payments.router import router as payments_router
from backend.payments.sandbox import SandboxProvider
from backend.problems import install_problem_handlers
from backend.queue.factory import build_waiting_room
from backend.queue.fast_lane import QueueFastLane
from backend.queue.router import router as queue_router
from backend.resale.fast_lane import ListingFastLane
from backend.resale.quick import QuickListings, conninfo_of
from backend.resale.router import router as resale_router
from backend.runtime import Runtime
from backend.sales.router import router as sales_router
from backend.tickets.router import router as tickets_router
from backend.web import install_web
from backend.worker import Worker

log = logging.getLogger("fairtix.app")


def build_chain(settings: Settings) -> ChainClient:
    """The chain client for the configured backend, with the factory it will create events on."""
    if settings.chain_backend == "eth-tester":
        from backend.chain.testing import eth_tester_web3

        w3, signer = eth_tester_web3()
        client = ChainClient(w3, signer)
        client.deploy_factory()
        return client
    w3 = connect_rpc(settings.rpc_url)
    chain_id = int(w3.eth.chain_id)
    if settings.minter_private_key is not None:
        from eth_account import Account

        signer = Account.from_key(settings.minter_private_key.get_secret_value())
    elif chain_id == DEVNET_CHAIN_ID and settings.env != "production":
        # The devnet's first account is a published test key: fine on anvil, refused elsewhere.
        signer = devnet_account(0)
        log.warning("using the devnet's first account as minter", extra={"chain_id": chain_id})
    else:
        raise ConfigError(
            f"chain {chain_id} at {settings.rpc_url} needs FAIRTIX_MINTER_PRIVATE_KEY "
            "(the key that deploys event contracts and mints tickets)"
        )
    factory = settings.factory_address
    if factory is None:
        root = settings.deployments_dir.parent
        if chain_id == DEVNET_CHAIN_ID and settings.env != "production":
            factory = deploy_factory_if_needed(w3, signer, root)["TicketFactory"]["address"]
        else:
            record = load_deployment(root, chain_id)
            if record is None:
                raise ConfigError(
                    f"no TicketFactory recorded for chain {chain_id}: run scripts/deploy.py "
                    "or set FAIRTIX_FACTORY_ADDRESS"
                )
            factory = record["TicketFactory"]["address"]
    return ChainClient(
        w3, signer, factory_address=factory, confirmations=settings.chain_confirmations
    )


def build_cards(settings: Settings, runtime_sessions: Any) -> PaymentProvider:
    if settings.payments_provider == "paypal":
        if (
            settings.paypal_client_id is None
            or settings.paypal_client_secret is None
            or settings.paypal_webhook_id is None
        ):
            raise ConfigError(
                "FAIRTIX_PAYMENTS_PROVIDER=paypal needs FAIRTIX_PAYPAL_CLIENT_ID, "
                "FAIRTIX_PAYPAL_CLIENT_SECRET and FAIRTIX_PAYPAL_WEBHOOK_ID"
            )
        return PayPalProvider(
            settings.paypal_client_id,
            settings.paypal_client_secret.get_secret_value(),
            settings.paypal_webhook_id,
            settings.paypal_api_base or SANDBOX_API,
            return_url=settings.paypal_return_url,
            cancel_url=settings.paypal_cancel_url,
        )
    if settings.payments_provider == "stripe":
        if settings.stripe_secret_key is None or settings.stripe_webhook_secret is None:
            raise ConfigError(
                "FAIRTIX_PAYMENTS_PROVIDER=stripe needs FAIRTIX_STRIPE_SECRET_KEY and "
                "FAIRTIX_STRIPE_WEBHOOK_SECRET"
            )
        return StripeProvider(
            settings.stripe_secret_key.get_secret_value(),
            settings.stripe_webhook_secret.get_secret_value(),
            settings.stripe_api_base,
        )
    if settings.stripe_webhook_secret is not None:
        secret = settings.stripe_webhook_secret.get_secret_value()
    else:
        # Derived from the service's signing secret, so an API process and a separate
        # `fairtix worker` (which signs the sandbox's deliveries) agree without more config.
        derived = hmac.new(settings.signing_secret, b"sandbox-webhook", hashlib.sha256)
        secret = "whsec_sandbox_" + derived.hexdigest()[:32]
    url = settings.sandbox_webhook_url or f"{settings.public_base_url}/payments/stripe/webhook"
    return SandboxProvider(runtime_sessions, secret, url)


def build_runtime(settings: Settings, chain: ChainClient | None = None) -> Runtime:
    settings.check_production_ready()
    engine = make_engine(settings.database_url)
    upgrade_to_head(engine)
    sessions = make_session_factory(engine)
    assert settings.ipfs_dir is not None
    chain = chain or build_chain(settings)
    # Nonces of mint batches stored but maybe not yet sent are taken, for every sender.
    chain.use_nonce_floor(NonceFloor(engine, chain))
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        chain=chain,
        blockstore=make_blockstore(settings.ipfs_dir, settings.ipfs_api),
        cards=build_cards(settings, sessions),
        queue=build_waiting_room(settings, sessions),
    )


def quick_listings(settings: Settings, runtime: Runtime) -> QuickListings | None:
    """The listing lane's async path (backend/resale/quick.py), where it can run: PostgreSQL,
    the session copy in Redis and a node over plain HTTP. Elsewhere every listing takes the
    routes."""
    if settings.queue_store != "redis" or not runtime.chain.reads_on_loop:
        return None
    conninfo = conninfo_of(settings.database_url)
    return QuickListings(conninfo, runtime.chain) if conninfo is not None else None


def create_app(settings: Settings | None = None, *, chain: ChainClient | None = None) -> FastAPI:
    settings = settings or Settings()
    cap_recursion_limit()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = build_runtime(settings, chain)
        # The loop's default limiter: what sync routes and run_in_threadpool draw from.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        app.state.runtime = runtime
        runtime.queue.start_lane()
        app.state.quick_listings = quick_listings(settings, runtime)
        app.state.blockstore = runtime.blockstore
        worker = Worker(runtime)
        app.state.worker = worker
        if settings.run_worker:
            worker.start_thread()
        tune_for_service()
        log.info(
            "fairtix started",
            extra={
                "chain_id": runtime.chain.chain_id,
                "factory": runtime.chain.factory_address,
                "payments": runtime.cards.name,
                "database": runtime.engine.url.render_as_string(),
            },
        )
        try:
            yield
        finally:
            worker.stop()
            await runtime.queue.stop_lane()
            if app.state.quick_listings is not None:
                await app.state.quick_listings.close()
            runtime.queue.close()
            # A client handed in (tests share one) must not read a database that is gone.
            runtime.chain.use_nonce_floor(None)
            runtime.engine.dispose()
            untune()

    app = FastAPI(
        title="fairtix",
        version=__version__,
        summary="Fair ticket sales: waiting room, card checkout, ERC-721 tickets on IPFS",
        lifespan=lifespan,
    )
    for router in (
        auth_router,
        catalog_router,
        queue_router,
        sales_router,
        payments_router,
        tickets_router,
        resale_router,
        door_router,
        ipfs_router,
        notify_router,
        account_router,
    ):
        app.include_router(router)
    install_problem_handlers(app)
    # Inside the guard (limits and input checks hold for it too), before the routing it spares.
    app.add_middleware(QueueFastLane)
    app.add_middleware(DoorFastLane)
    app.add_middleware(ListingFastLane)
    # Inside CORS, so a browser can read a 429 or 413 too.
    install_guard(app, settings)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Queue-Token"],
        )

    @app.get("/livez", tags=["ops"])
    async def livez() -> dict[str, str]:
        """Liveness: a constant answer that touches nothing (readiness, with checks, is /health).
        async, so it is answered on the event loop: as a plain def it waited for a free
        request thread, and a sale keeping all of them busy could fail the probe."""
        return {"status": "alive"}

    @app.get("/health", tags=["ops"])
    def health() -> JSONResponse:
        runtime: Runtime = app.state.runtime
        checks: dict[str, Any] = {}
        healthy = True
        try:
            with runtime.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
            healthy = False
        try:
            checks["chain"] = {
                "chain_id": runtime.chain.chain_id,
                "block": runtime.chain.block_number(),
            }
        except Exception as exc:
            checks["chain"] = f"error: {type(exc).__name__}"
            healthy = False
        body = {"status": "ok" if healthy else "degraded", "version": __version__, **checks}
        return JSONResponse(body, status_code=200 if healthy else 503)

    # The web client: `/` and `/web/...`, nothing an API route uses.
    install_web(app, settings)

    # Last: its middleware is then the outermost, around whatever middleware came before.
    install_metrics(app, settings)
    return app
