"""HTTP routes for a wallet's own data: export it, erase what can be erased."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from redis import RedisError

from backend.account import service as account
from backend.auth import service as auth
from backend.auth.errors import SessionStoreUnavailable
from backend.db.base import utcnow
from backend.db.engine import transaction
from backend.deps import PrincipalDep, RuntimeDep
from backend.problems import problem_responses

router = APIRouter(tags=["account"], responses=problem_responses(401))

KEPT = [
    "orders, tickets, listings, resale purchases, payouts and refunds: the record of money "
    "taken and owed and of tickets that are tokens on a public chain (which carries your "
    "address anyway); they are needed to refund or pay you and for the organizer's accounts",
    "door admissions: they decide whether a ticket was used",
]


class AccountExport(BaseModel):
    address: str
    exported_at: datetime
    sections: dict[str, list[dict[str, Any]]] = Field(
        description="Every row fairtix keeps tied to your address, by table, every column "
        "but secrets (session token hashes, signed transactions, payment client secrets)"
    )
    truncated: list[str] = Field(
        description="Sections cut at 10,000 rows (ask the operator for the rest)"
    )


class ErasureOut(BaseModel):
    address: str
    contact_email_erased: bool = Field(description="Your e-mail for receipts was deleted")
    signed_out: bool = Field(description="This sign-in session was ended")
    kept: list[str] = Field(description="What is kept, and why")


@router.get("/me/export", response_model=AccountExport)
def export_my_data(runtime: RuntimeDep, principal: PrincipalDep) -> AccountExport:
    """Everything fairtix keeps about your wallet off chain, as one JSON document."""
    with transaction(runtime.sessions) as session:
        found = account.export(session, principal.address)
    return AccountExport(exported_at=utcnow(), **found)


@router.delete("/me/data", response_model=ErasureOut)
def erase_my_data(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> ErasureOut:
    """Erase your personal data (your e-mail for receipts) and end this session. What must be
    kept to honour payments and tickets is kept, and listed in the answer. Other devices stay
    signed in until their sessions expire or they sign out."""
    token = request.headers["authorization"].split(" ", 1)[1].strip()
    try:
        runtime.queue.session_cache.forget(token)
    except RedisError as exc:
        raise SessionStoreUnavailable(type(exc).__name__) from exc
    with transaction(runtime.sessions) as session:
        erased = account.erase(session, principal.address)
        auth.sign_out(session, token)
    return ErasureOut(
        address=principal.address,
        contact_email_erased=erased.contact_email,
        signed_out=True,
        kept=KEPT,
    )
