"""HTTP routes for Sign-In with Ethereum, sessions and role administration."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request, Response
from redis import RedisError

from backend.auth import service as auth
from backend.auth.errors import (
    AuthError,
    NonceError,
    NotAuthenticated,
    RoleMissing,
    SessionStoreUnavailable,
    SiweError,
    SiweParseError,
)
from backend.auth.schemas import ADDRESS_PATTERN, MeOut, NonceOut, RoleGrantIn, SessionOut, VerifyIn
from backend.db.engine import transaction
from backend.deps import PrincipalDep, RuntimeDep
from backend.problems import problem_responses, register_problem

router = APIRouter(tags=["auth"], responses=problem_responses(400, 401, 403, 422, 503))

register_problem(AuthError, 401, "auth-failed", "Authentication failed")
register_problem(SiweError, 401, "siwe-rejected", "Sign-in message rejected")
register_problem(SiweParseError, 400, "siwe-malformed", "Sign-in message is malformed")
register_problem(NonceError, 401, "nonce-rejected", "Sign-in nonce rejected")
register_problem(NotAuthenticated, 401, "not-authenticated", "Sign-in required")
register_problem(RoleMissing, 403, "forbidden", "Role required")
register_problem(
    SessionStoreUnavailable, 503, "session-store-unavailable", "Sign-out briefly unavailable"
)

STATEMENT = "Sign in to fairtix to queue for and buy tickets."


@router.post("/auth/nonce", response_model=NonceOut, status_code=201)
def create_nonce(runtime: RuntimeDep) -> NonceOut:
    """Step 1 of sign-in: a single-use nonce and the exact fields your message must carry."""
    settings = runtime.settings
    with transaction(runtime.sessions) as session:
        nonce = auth.issue_nonce(session, timedelta(seconds=settings.nonce_ttl_seconds))
    return NonceOut(
        nonce=nonce.nonce,
        expires_at=nonce.expires_at,
        domain=settings.siwe_domain,
        uri=settings.siwe_uri,
        chain_id=runtime.chain.chain_id,
        statement=STATEMENT,
    )


@router.post("/auth/verify", response_model=SessionOut)
def verify(body: VerifyIn, runtime: RuntimeDep) -> SessionOut:
    """Step 2: send the EIP-4361 message your wallet signed; get a bearer token back."""
    settings = runtime.settings
    policy = auth.SignInPolicy(
        domain=settings.siwe_domain,
        uri=settings.siwe_uri,
        chain_id=runtime.chain.chain_id,
        session_ttl=timedelta(seconds=settings.session_ttl_seconds),
    )
    with transaction(runtime.sessions) as session:
        issued = auth.sign_in(session, body.message, body.signature, policy)
    # After the commit: the copy never holds a session the database doesn't.
    runtime.queue.session_cache.remember(issued.token, issued.address, issued.expires_at)
    return SessionOut(token=issued.token, address=issued.address, expires_at=issued.expires_at)


@router.post("/auth/logout", status_code=204)
def logout(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> Response:
    token = request.headers["authorization"].split(" ", 1)[1].strip()
    # Tombstone first: if Redis can't take it the logout fails (503) and the session stays
    # whole, rather than live on in the copy after the database revoked it.
    try:
        runtime.queue.session_cache.forget(token)
    except RedisError as exc:
        raise SessionStoreUnavailable(type(exc).__name__) from exc
    with transaction(runtime.sessions) as session:
        auth.sign_out(session, token)
    return Response(status_code=204)


@router.get("/auth/me", response_model=MeOut)
def me(principal: PrincipalDep) -> MeOut:
    return MeOut(address=principal.address, roles=sorted(role.value for role in principal.roles))


@router.post("/admin/roles", response_model=MeOut, status_code=201)
def grant_role(body: RoleGrantIn, runtime: RuntimeDep, principal: PrincipalDep) -> MeOut:
    """Admins only: give a wallet the organizer or scanner role."""
    auth.require(principal, auth.Role.ADMIN)
    with transaction(runtime.sessions) as session:
        auth.grant_role(session, body.address, auth.Role(body.role), principal.address)
        roles = auth.roles_of(session, body.address, runtime.settings.admin_addresses)
    return MeOut(address=body.address.lower(), roles=sorted(role.value for role in roles))


@router.delete("/admin/roles/{address}/{role}", status_code=204)
def revoke_role(
    address: Annotated[str, Path(pattern=ADDRESS_PATTERN)],
    role: Literal["organizer", "scanner"],
    runtime: RuntimeDep,
    principal: PrincipalDep,
) -> Response:
    auth.require(principal, auth.Role.ADMIN)
    with transaction(runtime.sessions) as session:
        auth.revoke_role(session, address, auth.Role(role))
    return Response(status_code=204)
