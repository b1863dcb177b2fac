"""Nonces and sessions: single-use, expiring, revocable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.auth import service as auth
from backend.auth.errors import NonceExpired, NonceUnknown, NotAuthenticated
from backend.auth.models import AuthNonce
from backend.demo import FairtixClient
from backend.runtime import Runtime

pytestmark = pytest.mark.db


def policy(runtime: Runtime) -> auth.SignInPolicy:
    return auth.SignInPolicy(
        domain=runtime.settings.siwe_domain,
        uri=runtime.settings.siwe_uri,
        chain_id=runtime.chain.chain_id,
        session_ttl=timedelta(hours=1),
    )


def signed_message(
    client: TestClient, wallet: LocalAccount, **nonce_fields: str
) -> tuple[str, str]:
    api = FairtixClient(client, wallet)
    nonce = client.post("/auth/nonce").json() | nonce_fields
    text = api.siwe_message(nonce)
    return text, api.personal_sign(text)


def test_nonce_response_tells_the_client_what_to_sign(client: TestClient, runtime: Runtime) -> None:
    nonce = client.post("/auth/nonce").json()
    assert nonce["domain"] == "testserver"
    assert nonce["uri"] == "http://testserver"
    assert nonce["chain_id"] == runtime.chain.chain_id
    assert len(nonce["nonce"]) >= 8 and nonce["nonce"].isalnum()


def test_expired_nonce_is_refused(client: TestClient, runtime: Runtime) -> None:
    text, signature = signed_message(client, Account.create())
    later = datetime.now(UTC) + timedelta(minutes=6)
    with runtime.sessions() as session, pytest.raises(NonceExpired):
        auth.sign_in(session, text, signature, policy(runtime), now=later)


def test_nonce_not_issued_here_is_refused(client: TestClient, runtime: Runtime) -> None:
    text, signature = signed_message(client, Account.create(), nonce="madeup12345")
    with runtime.sessions() as session, pytest.raises(NonceUnknown):
        auth.sign_in(session, text, signature, policy(runtime))


def test_session_ends_at_logout_and_at_expiry(client: TestClient, runtime: Runtime) -> None:
    wallet = Account.create()
    text, signature = signed_message(client, wallet)
    session_out = client.post("/auth/verify", json={"message": text, "signature": signature}).json()
    headers = {"Authorization": f"Bearer {session_out['token']}"}
    me = client.get("/auth/me", headers=headers).json()
    assert me == {"address": wallet.address.lower(), "roles": ["buyer"]}

    # The session never outlives the expiration the wallet signed (one hour in the demo client).
    expires = datetime.fromisoformat(session_out["expires_at"])
    assert expires <= datetime.now(UTC) + timedelta(hours=1, seconds=5)
    with Session(runtime.engine) as session, pytest.raises(NotAuthenticated, match="expired"):
        auth.resolve_token(session, session_out["token"], now=expires + timedelta(seconds=1))

    assert client.post("/auth/logout", headers=headers).status_code == 204
    assert client.get("/auth/me", headers=headers).status_code == 401


def test_admin_role_comes_from_configuration(client: TestClient, admin: LocalAccount) -> None:
    text, signature = signed_message(client, admin)
    token = client.post("/auth/verify", json={"message": text, "signature": signature}).json()
    me = client.get("/auth/me", headers={"Authorization": f"Bearer {token['token']}"}).json()
    assert me["roles"] == ["admin", "buyer", "organizer", "scanner"]


def test_nonce_rows_record_who_used_them(client: TestClient, runtime: Runtime) -> None:
    wallet = Account.create()
    text, signature = signed_message(client, wallet)
    client.post("/auth/verify", json={"message": text, "signature": signature})
    with Session(runtime.engine) as session:
        [used] = [n for n in session.query(AuthNonce).all() if n.used_at is not None]
        assert used.used_by == wallet.address.lower()


def test_housekeeping_purges_only_what_can_no_longer_be_used(
    client: TestClient, runtime: Runtime
) -> None:
    text, signature = signed_message(client, Account.create())
    client.post("/auth/verify", json={"message": text, "signature": signature})
    client.post("/auth/nonce")
    with Session(runtime.engine) as session:
        assert auth.purge_expired(session) == 0
        far_future = datetime.now(UTC) + timedelta(days=2)
        assert auth.purge_expired(session, now=far_future) == 3  # two nonces, one session
        session.commit()
