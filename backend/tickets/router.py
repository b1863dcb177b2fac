"""HTTP routes for a wallet's own tickets."""

from __future__ import annotations

from fastapi import APIRouter

from backend.db.engine import transaction
from backend.deps import RuntimeDep, WalletDep
from backend.problems import problem_responses
from backend.sales import holder_refunds
from backend.tickets.schemas import TicketList, TicketOut, TicketRefundOut
from backend.tickets.service import tickets_of

router = APIRouter(
    tags=["tickets"],
    responses=problem_responses(
        401,
    ),
)


@router.get("/me/tickets", response_model=TicketList)
def my_tickets(runtime: RuntimeDep, wallet: WalletDep) -> TicketList:
    base = runtime.settings.public_base_url
    with transaction(runtime.sessions) as session:
        rows = tickets_of(session, wallet)
        tickets = [
            TicketOut(
                event_id=event.id,
                event_name=event.name,
                chain_id=event.chain_id,
                contract_address=event.contract_address,
                token_id=ticket.token_id,
                order_id=ticket.order_id,
                seat=ticket.seat,
                tx_hash=ticket.tx_hash,
                metadata_uri=f"ipfs://{ticket.metadata_cid}",
                metadata_url=f"{base}/ipfs/{ticket.metadata_cid}",
                event_cancelled=event.cancelled_at is not None,
                refunds=[
                    TicketRefundOut(**vars(refund))
                    for refund in holder_refunds.ticket_refunds(session, ticket, event)
                ],
            )
            for ticket, event in rows
        ]
    return TicketList(address=wallet, tickets=tickets)
