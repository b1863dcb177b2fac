"""Sign-in, bearer sessions and roles. No HTTP here: the router maps errors to problems."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from backend.auth import siwe
from backend.auth.errors import (
    NonceExpired,
    NonceUnknown,
    NonceUsed,
    NotAuthenticated,
    RoleMissing,
)
from backend.auth.models import AuthNonce, AuthSession, RoleGrant
from backend.db.base import utcnow

TOKEN_PREFIX = "ftx_"
# Used nonces are kept a while after expiry so a replay is reported as a replay.
NONCE_RETENTION = timedelta(hours=1)


class Role(StrEnum):
    ADMIN = "admin"
    ORGANIZER = "organizer"
    SCANNER = "scanner"
    BUYER = "buyer"


GRANTABLE_ROLES = frozenset({Role.ORGANIZER, Role.SCANNER})


@dataclass(frozen=True)
class SignInPolicy:
    """What a SIWE message must say to be accepted here."""

    domain: str
    uri: str
    chain_id: int
    session_ttl: timedelta


@dataclass(frozen=True)
class IssuedSession:
    token: str
    address: str
    expires_at: datetime


@dataclass(frozen=True)
class Principal:
    """The signed-in wallet behind a request and the roles it holds."""

    address: str  # lowercase 0x-hex
    roles: frozenset[Role]

    def has(self, role: Role) -> bool:
        return role in self.roles

    def manages(self, organizer_address: str) -> bool:
        """Whether this wallet may run an event organized by ``organizer_address``: its
        organizer, or an admin."""
        return self.has(Role.ADMIN) or self.address == organizer_address


def bearer_credential(authorization: str) -> str | None:
    """The credential of an ``Authorization: Bearer <credential>`` header, split as FastAPI's
    HTTPBearer splits it (scheme case-insensitive, nothing stripped); None for another scheme or
    an empty credential. The pure-ASGI fast lanes and the metrics endpoint read it this way."""
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credential:
        return None
    return credential


def issue_nonce(session: Session, ttl: timedelta, now: datetime | None = None) -> AuthNonce:
    now = now or utcnow()
    # EIP-4361 wants at least 8 alphanumeric characters; 96 bits of randomness, hex-encoded.
    nonce = AuthNonce(nonce=secrets.token_hex(12), created_at=now, expires_at=now + ttl)
    session.add(nonce)
    return nonce


def sign_in(
    session: Session,
    message_text: str,
    signature: str,
    policy: SignInPolicy,
    now: datetime | None = None,
) -> IssuedSession:
    """Verify a signed SIWE message, consume its nonce and open a bearer session."""
    now = now or utcnow()
    message = siwe.parse_message(message_text)
    record = session.get(AuthNonce, message.nonce)
    if record is None:
        raise NonceUnknown(message.nonce)
    if record.used_at is not None:
        raise NonceUsed(message.nonce)
    if record.expires_at <= now:
        raise NonceExpired(message.nonce, record.expires_at)
    siwe.verify(
        message_text,
        signature,
        domain=policy.domain,
        nonce=record.nonce,
        chain_id=policy.chain_id,
        uri=policy.uri,
        now=now,
    )
    address = message.address.lower()
    # Conditional update: of two concurrent sign-ins with one nonce, exactly one wins.
    consumed = session.execute(
        update(AuthNonce)
        .where(AuthNonce.nonce == record.nonce, AuthNonce.used_at.is_(None))
        .values(used_at=now, used_by=address)
        .execution_options(synchronize_session=False)
    )
    if consumed.rowcount != 1:  # type: ignore[attr-defined]
        raise NonceUsed(message.nonce)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = now + policy.session_ttl
    if message.expiration_dt is not None:
        # A wallet that asked for a shorter sign-in gets no longer than it asked for.
        expires_at = min(expires_at, message.expiration_dt)
    session.add(
        AuthSession(token_hash=_hash(token), address=address, created_at=now, expires_at=expires_at)
    )
    return IssuedSession(token=token, address=address, expires_at=expires_at)


def resolve_token(session: Session, token: str, now: datetime | None = None) -> str:
    """Return the wallet address behind a bearer token, or raise NotAuthenticated."""
    return resolve_session(session, token, now).address


def resolve_session(session: Session, token: str, now: datetime | None = None) -> IssuedSession:
    """The live session behind a bearer token, or raise NotAuthenticated."""
    now = now or utcnow()
    if not token.startswith(TOKEN_PREFIX):
        raise NotAuthenticated("the bearer token is not a fairtix session token")
    record = session.get(AuthSession, _hash(token))
    if record is None or record.revoked_at is not None:
        raise NotAuthenticated("the session is unknown or was signed out")
    if record.expires_at <= now:
        raise NotAuthenticated("the session has expired; sign in again")
    return IssuedSession(token=token, address=record.address, expires_at=record.expires_at)


def sign_out(session: Session, token: str, now: datetime | None = None) -> None:
    session.execute(
        update(AuthSession)
        .where(AuthSession.token_hash == _hash(token), AuthSession.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    )


def roles_of(session: Session, address: str, admin_addresses: list[str]) -> frozenset[Role]:
    roles = {Role.BUYER}
    if address.lower() in admin_addresses:
        # Admins can do what organizers and scanners can.
        roles |= {Role.ADMIN, Role.ORGANIZER, Role.SCANNER}
    granted = session.scalars(select(RoleGrant.role).where(RoleGrant.address == address.lower()))
    roles |= {Role(role) for role in granted}
    return frozenset(roles)


def require(principal: Principal, role: Role) -> None:
    if not principal.has(role):
        raise RoleMissing(principal.address, role.value)


def grant_role(session: Session, address: str, role: Role, granted_by: str) -> RoleGrant:
    existing = session.scalar(
        select(RoleGrant).where(RoleGrant.address == address.lower(), RoleGrant.role == role.value)
    )
    if existing is not None:
        return existing
    grant = RoleGrant(address=address.lower(), role=role.value, granted_by=granted_by)
    session.add(grant)
    return grant


def revoke_role(session: Session, address: str, role: Role) -> bool:
    grant = session.scalar(
        select(RoleGrant).where(RoleGrant.address == address.lower(), RoleGrant.role == role.value)
    )
    if grant is None:
        return False
    session.delete(grant)
    return True


def purge_expired(session: Session, now: datetime | None = None) -> int:
    """Delete nonces and sessions that can no longer be used; returns rows removed."""
    now = now or utcnow()
    nonces = session.execute(delete(AuthNonce).where(AuthNonce.expires_at < now - NONCE_RETENTION))
    sessions = session.execute(delete(AuthSession).where(AuthSession.expires_at < now))
    return int(nonces.rowcount + sessions.rowcount)  # type: ignore[attr-defined]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
