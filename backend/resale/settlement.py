"""Settling paid card purchases on chain: the relayer's ``buyResaleFor(order, signature, buyer)``,
sent exactly once, with the discipline of the mint path (backend.fulfilment).

* ``send`` (outbox ``resale_settle``): estimates the call first (a revert there, e.g. the ticket
  went to an ether buyer first, refunds the card and sends nothing), then signs the transaction
  and stores it with its nonce in the same database transaction that moves the purchase to
  ``settling`` (write-ahead, under the signer's nonce lock that mint batches take too), and only
  then broadcasts it. A crash before the commit sent nothing; after it, the stored transaction
  is the one that is sent, again if need be.
* ``advance`` (every worker pass): follows each ``settling`` purchase's transaction. Mined and
  successful: the indexer's Resold log settles the purchase (and pays the seller). Reverted
  because the order can't fill any more (sold, void, expired, cancelled): the card is refunded.
  Never mined and its nonce taken by another transaction: settled again with a new nonce.
  Unknown to the node: sent again as stored.

The relayer pays the price in ether, or only the royalty when the order names it as payee (a
card-payout seller's order: the contract nets the proceeds that would come back to it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend import outbox
from backend.catalog.models import Event
from backend.chain.client import ChainClient
from backend.chain.errors import (
    ChainUnavailable,
    ResaleRejected,
    SalesClosed,
    TicketUnavailable,
)
from backend.chain.types import Fees, MinedTx, SignedTx, Wei
from backend.config import Settings
from backend.db.base import utcnow
from backend.db.engine import transaction
from backend.fulfilment import nonces
from backend.resale import purchases
from backend.resale import service as resale
from backend.resale.cards import SETTLE
from backend.resale.models import P_PAID, P_SETTLING, CardPurchase, Listing

log = logging.getLogger("fairtix.resale.settlement")

# Reverts that mean the order can never fill for this buyer: the card is refunded.
LOST_RACE = (ResaleRejected, TicketUnavailable, SalesClosed)
FOLLOWED_PER_PASS = 100


@dataclass(frozen=True)
class Terms:
    """One settlement's call, as signed and as replayed to explain a failure."""

    purchase_id: int
    contract: str
    order: dict[str, Any]
    signature: str
    recipient: str
    value: int


@dataclass(frozen=True)
class Settling:
    terms: Terms
    tx_hash: str
    nonce: int
    signer: str
    raw: str
    gas: int


class Settler:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        chain: ChainClient,
        settings: Settings,
        *,
        on_sent: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._chain = chain
        self._fee_ceiling = Wei(settings.mint_fee_ceiling_wei)
        # Called once a settlement is stored and broadcast: the worker wakes its chain loop, so
        # the indexer looks for the Resold log now instead of after an idle loop's backoff.
        self._on_sent = on_sent
        self.in_flight = 0
        """Settlements the last ``advance`` found under way (the chain loop polls at its
        interval, not its idle backoff, while there are some)."""

    # -- sending ----------------------------------------------------------------------------

    def send(self, purchase_id: int) -> None:
        """Outbox ``resale_settle``: settle a paid card purchase (idempotent: a purchase that is
        not ``paid`` any more has its settlement under way or decided)."""
        terms = self._terms(purchase_id)
        if terms is None:
            return
        try:
            gas = self._chain.estimate_buy_resale_for(
                terms.contract, terms.order, terms.signature, terms.recipient, terms.value
            )
        except LOST_RACE as exc:
            self._give_up(purchase_id, f"the order can't be filled any more ({exc})", P_PAID, None)
            return
        fees = self._chain.suggested_fees().capped(self._fee_ceiling)
        signed = self._write_ahead(terms, gas, fees)
        if signed is None:
            return
        try:
            refusal = self._chain.broadcast(signed.raw)
        except ChainUnavailable as exc:
            refusal = str(exc)  # stored: advance sends it again
        if self._on_sent is not None:
            self._on_sent()
        log.info(
            "card resale settlement sent",
            extra={
                "purchase_id": purchase_id,
                "nonce": signed.nonce,
                "tx": signed.tx_hash,
                "value_wei": terms.value,
                "refused": refusal,
            },
        )

    def _terms(self, purchase_id: int) -> Terms | None:
        now = utcnow()
        with transaction(self._sessions) as session:
            purchase = session.get(CardPurchase, purchase_id)
            if purchase is None or purchase.status != P_PAID:
                return None
            listing = session.get(Listing, purchase.listing_id)
            event = session.get(Event, purchase.event_id)
            assert listing is not None and event is not None
            if not resale.is_open(event, now):
                self._refund(session, purchase, listing, "resale closed before it was settled")
                return None
            order = resale.order_of(listing)
            price = int(order["price"])
            payee = listing.payee_address
            netted = payee is not None and payee == self._chain.signer_address.lower()
            value = price * event.royalty_bps // resale.BPS if netted else price
            return Terms(
                purchase.id,
                event.contract_address,
                order,
                listing.signature,
                purchase.buyer_address,
                value,
            )

    def _write_ahead(self, terms: Terms, gas: int, fees: Fees) -> SignedTx | None:
        """Signs the settlement and stores it, with the purchase's move to settling, in one
        database transaction, choosing the nonce under the signer's lock."""
        chain_id, signer = self._chain.chain_id, self._chain.signer_address.lower()
        session = self._sessions()
        try:
            purchase = session.get(CardPurchase, terms.purchase_id, with_for_update=True)
            if purchase is None or purchase.status != P_PAID:
                session.commit()
                return None  # another worker took it meanwhile
            nonces.lock_signer(session, chain_id, signer)
            floor = nonces.lowest_free(session, chain_id, signer)
            with self._chain.next_nonce(floor) as nonce:
                signed = self._chain.sign_buy_resale_for(
                    terms.contract,
                    terms.order,
                    terms.signature,
                    terms.recipient,
                    terms.value,
                    nonce=nonce,
                    gas=gas,
                    fees=fees,
                )
                purchase.status = P_SETTLING
                purchase.settle_chain_id, purchase.settle_signer = chain_id, signer
                purchase.settle_nonce, purchase.settle_gas = nonce, gas
                purchase.settle_raw_tx, purchase.settle_tx_hash = signed.raw, signed.tx_hash
                purchase.settle_value_wei = str(terms.value)
                # Inside next_nonce: the client's counter moves past the nonce only once the
                # settlement holding it is stored.
                session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        return signed

    # -- following --------------------------------------------------------------------------

    def advance(self) -> int:
        """One step for every settlement under way; returns how many reached an end here."""
        settling = self._settling()
        self.in_flight = len(settling)
        # Each signer's mined nonce count, read once per pass before any receipt (not once per
        # settlement: with a burst in flight those reads were most of a chain-loop pass, which
        # the indexer, and so every card buyer, waits on). Read before the receipts, it keeps
        # _follow's rule: a transaction mined since shows its receipt.
        counts: dict[str, int] = {}
        done = 0
        for item in settling:
            try:
                if item.signer not in counts:
                    counts[item.signer] = self._chain.mined_nonce_count(account=item.signer)
                done += self._follow(item, counts[item.signer])
            except ChainUnavailable:
                log.warning("chain unavailable; settlements followed next pass")
                break
            except Exception:
                log.exception(
                    "settlement not followed", extra={"purchase_id": item.terms.purchase_id}
                )
        return done

    def _settling(self) -> list[Settling]:
        chain_id = self._chain.chain_id
        with transaction(self._sessions) as session:
            rows = session.execute(
                select(CardPurchase, Listing, Event)
                .join(Listing, Listing.id == CardPurchase.listing_id)
                .join(Event, Event.id == CardPurchase.event_id)
                .where(CardPurchase.status == P_SETTLING, CardPurchase.settle_chain_id == chain_id)
                .order_by(CardPurchase.settle_nonce)
                .limit(FOLLOWED_PER_PASS)
            ).all()
            found = []
            for purchase, listing, event in rows:
                if purchase.settle_raw_tx is None or purchase.settle_tx_hash is None:
                    continue
                terms = Terms(
                    purchase.id,
                    event.contract_address,
                    resale.order_of(listing),
                    listing.signature,
                    purchase.buyer_address,
                    int(purchase.settle_value_wei or 0),
                )
                found.append(
                    Settling(
                        terms,
                        purchase.settle_tx_hash,
                        int(purchase.settle_nonce or 0),
                        purchase.settle_signer or "",
                        purchase.settle_raw_tx,
                        int(purchase.settle_gas or 0),
                    )
                )
            return found

    def _follow(self, item: Settling, mined_nonces: int) -> int:
        # The nonce count first, the receipt second: a transaction of ours mined between the two
        # reads shows its receipt, so "nonce spent and no receipt" means another one took it.
        spent = mined_nonces > item.nonce
        mined = self._chain.transaction_receipt(item.tx_hash)
        if mined is None:
            if spent:
                self._retry(item, "its nonce went to another transaction")
                return 1
            if not self._chain.knows_transaction(item.tx_hash):
                # Stored but not on the node (the sender died before sending it, or the node
                # dropped it): the same signed transaction again, never a second one.
                refusal = self._chain.broadcast(item.raw)
                log.info(
                    "card resale settlement sent again as stored",
                    extra={"purchase_id": item.terms.purchase_id, "refused": refusal},
                )
                return 1
            return 0
        if mined.succeeded:
            return 0  # the indexer's Resold log settles it and pays the seller
        if self._chain.confirmations > 0 and (
            self._chain.block_number() < mined.block_number + self._chain.confirmations
        ):
            return 0  # a revert not yet final: a reorg may still mine it otherwise
        return self._failed(item, mined)

    def _failed(self, item: Settling, mined: MinedTx) -> int:
        terms = item.terms
        error = self._chain.explain_resale_failure(
            terms.contract,
            terms.order,
            terms.signature,
            terms.recipient,
            terms.value,
            mined,
            item.gas,
        )
        if isinstance(error, LOST_RACE):
            reason = f"the ticket could not be settled for the buyer ({error})"
            self._give_up(terms.purchase_id, reason, P_SETTLING, item.tx_hash)
        else:
            self._retry(item, f"reverted without a reason to give up ({error})")
        return 1

    def _retry(self, item: Settling, reason: str) -> None:
        """The stored transaction will never be mined: settle again (the next estimate decides
        whether the order can still fill)."""
        with transaction(self._sessions) as session:
            purchase = session.get(CardPurchase, item.terms.purchase_id, with_for_update=True)
            if purchase is None or not _still(purchase, P_SETTLING, item.tx_hash):
                return
            log.warning(
                "card resale settlement sent again",
                extra={"purchase_id": purchase.id, "tx": item.tx_hash, "reason": reason},
            )
            purchase.status = P_PAID
            purchase.settle_raw_tx = purchase.settle_nonce = None
            outbox.enqueue(session, SETTLE, {"purchase_id": purchase.id})

    def _give_up(self, purchase_id: int, reason: str, expected: str, tx_hash: str | None) -> None:
        with transaction(self._sessions) as session:
            purchase = session.get(CardPurchase, purchase_id, with_for_update=True)
            if purchase is None or not _still(purchase, expected, tx_hash):
                return
            listing = session.get(Listing, purchase.listing_id, with_for_update=True)
            assert listing is not None
            self._refund(session, purchase, listing, reason)

    @staticmethod
    def _refund(session: Session, purchase: CardPurchase, listing: Listing, reason: str) -> None:
        # The listing's own fate is the indexer's (a Transfer voided it) or the expiry sweep's;
        # the hold for this buyer ends here.
        purchases.release_listing(session, listing)
        purchases.refund(session, purchase, reason)


def _still(purchase: CardPurchase, status: str, tx_hash: str | None) -> bool:
    return purchase.status == status and (tx_hash is None or purchase.settle_tx_hash == tx_hash)
