"""FastAPI dependencies shared by every router: the runtime and the signed-in principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from backend.auth import service as auth
from backend.auth.errors import NotAuthenticated
from backend.auth.session_cache import wallet_from_copy
from backend.db.engine import transaction
from backend.guard.limits import WALLET_COUNTED, RateLimits
from backend.runtime import Runtime

_bearer = HTTPBearer(auto_error=False, description="Session token from POST /auth/verify")


async def get_runtime(request: Request) -> Runtime:
    # async on purpose: FastAPI runs a plain-def dependency in the thread pool, a hop that cost
    # the waiting room's hot endpoints more CPU than their own work.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def rate_limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


def get_principal(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> auth.Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated("sign in with Ethereum and send 'Authorization: Bearer <token>'")
    with transaction(runtime.sessions) as session:
        address = auth.resolve_token(session, credentials.credentials)
        roles = auth.roles_of(session, address, runtime.settings.admin_addresses)
    rate_limits(request).check_wallet(address)
    return auth.Principal(address=address, roles=roles)


PrincipalDep = Annotated[auth.Principal, Depends(get_principal)]


async def get_wallet(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The signed-in wallet, for the buyer's routes, which need no role: from the session copy in
    Redis when it holds the session (no database round trip on an on-sale's hottest paths),
    else from the database, which then refills the copy.

    async, like the waiting room's join: the copy is one Redis GET, answered on the event loop
    without the thread-pool hop a plain-def dependency costs every request."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated("sign in with Ethereum and send 'Authorization: Bearer <token>'")
    cache = runtime.queue.session_cache
    wallet = wallet_from_copy(cache, credentials.credentials)
    if wallet is None:
        wallet = await run_in_threadpool(_wallet_from_database, runtime, credentials.credentials)
    if request.scope.get(WALLET_COUNTED) != wallet:
        rate_limits(request).check_wallet(wallet)
    return wallet


def _wallet_from_database(runtime: Runtime, token: str) -> str:
    with transaction(runtime.sessions) as session:
        issued = auth.resolve_session(session, token)
    runtime.queue.session_cache.remember(token, issued.address, issued.expires_at)
    return issued.address


WalletDep = Annotated[str, Depends(get_wallet)]
