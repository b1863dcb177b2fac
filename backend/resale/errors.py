"""Exceptions raised by the resale domain. Each is refused before anything is written.

* ResaleError
  + ListingNotFound
  + TicketNotFound
  + NotTicketHolder
  + NotListingSeller
  + HolderNotConfirmed
  + SignatureNotByHolder
  + PriceAboveCap
  + InvalidListing
  + StaleSellOrder
  + TicketNotResellable
  + ResaleClosed
  + OwnListing
  + ListingNotLive
  + InvalidCursor
  + ListingReserved
  + NotListingBuyer
  + CardPayoutNotAllowed
  + CardPayoutTooHigh
  + CardRailUnavailable
"""

from __future__ import annotations


class ResaleError(Exception):
    """Root of every resale error."""


class ListingNotFound(ResaleError):
    """Raised when a listing id names no listing."""

    def __init__(self, listing_id: int) -> None:
        super().__init__(f"there is no listing with id {listing_id}")
        self.listing_id = listing_id


class TicketNotFound(ResaleError):
    """Raised when an event's token id names no ticket of ours."""

    def __init__(self, event_id: int, token_id: int) -> None:
        super().__init__(f"event {event_id} has no ticket with token id {token_id}")
        self.event_id = event_id
        self.token_id = token_id


class NotTicketHolder(ResaleError):
    """Raised when someone other than a ticket's holder asks to list it."""

    def __init__(self, token_id: int, wallet: str) -> None:
        super().__init__(f"ticket {token_id} is not held by {wallet}; only its holder can list it")
        self.token_id = token_id
        self.wallet = wallet


class NotListingSeller(ResaleError):
    """Raised when someone other than a listing's seller asks to delist it."""

    def __init__(self, listing_id: int, wallet: str) -> None:
        super().__init__(f"listing {listing_id} is not {wallet}'s; only its seller can delist it")
        self.listing_id = listing_id
        self.wallet = wallet


class HolderNotConfirmed(ResaleError):
    """Raised when the chain names another holder than the one the indexer recorded: the
    ticket moved and the indexer has not caught up (or a reorg is under way)."""

    def __init__(self, token_id: int, on_chain: str) -> None:
        super().__init__(
            f"ticket {token_id} is held by {on_chain} on chain; it can't be listed until that "
            "is settled"
        )
        self.token_id = token_id
        self.on_chain = on_chain


class SignatureNotByHolder(ResaleError):
    """Raised when a sell order's signature is not the ticket holder's over that order."""

    def __init__(self, token_id: int, signer: str | None) -> None:
        who = "no valid signature" if signer is None else f"signed by {signer}"
        super().__init__(
            f"the sell order for ticket {token_id} is {who}, not by its holder over these terms"
        )
        self.token_id = token_id
        self.signer = signer


class PriceAboveCap(ResaleError):
    """Raised when an asking price is above the ticket's face price times the event's cap."""

    def __init__(self, price_wei: int, cap_wei: int) -> None:
        super().__init__(
            f"the price {price_wei} wei is above this ticket's resale cap of {cap_wei} wei"
        )
        self.price_wei = price_wei
        self.cap_wei = cap_wei


class InvalidListing(ResaleError):
    """Raised when a sell order's terms can't be listed (deadline, price unit)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StaleSellOrder(ResaleError):
    """Raised when a sell order carries another nonce than the ticket's sale nonce now: the
    ticket moved or its orders were cancelled since it was signed."""

    def __init__(self, token_id: int, nonce: int, current: int) -> None:
        super().__init__(
            f"the sell order for ticket {token_id} carries nonce {nonce}; it must carry "
            f"{current}: sign it again"
        )
        self.token_id = token_id
        self.nonce = nonce
        self.current = current


class TicketNotResellable(ResaleError):
    """Raised when a ticket was checked in or refunded."""

    def __init__(self, token_id: int, reason: str) -> None:
        super().__init__(f"ticket {token_id} can't be resold: {reason}")
        self.token_id = token_id
        self.reason = reason


class ResaleClosed(ResaleError):
    """Raised when the event's organizer turned resale off, or its resale window closed."""

    def __init__(self, event_id: int, reason: str) -> None:
        super().__init__(f"resale for event {event_id} is closed: {reason}")
        self.event_id = event_id
        self.reason = reason


class OwnListing(ResaleError):
    """Raised when a seller asks to buy their own listing."""

    def __init__(self, listing_id: int) -> None:
        super().__init__(f"listing {listing_id} is your own; it can't be bought by its seller")
        self.listing_id = listing_id


class ListingNotLive(ResaleError):
    """Raised when a listing is asked for something only a listing on the market can do."""

    def __init__(self, listing_id: int, status: str) -> None:
        super().__init__(f"listing {listing_id} is {status}, not on the market")
        self.listing_id = listing_id
        self.status = status


class InvalidCursor(ResaleError):
    """Raised when a page cursor is not one this API handed out for that sort order."""

    def __init__(self, cursor: str) -> None:
        super().__init__(f"{cursor!r} is not a cursor of this listing's sort order")
        self.cursor = cursor


class ListingReserved(ResaleError):
    """Raised when a listing is held for a card buyer who is paying for it."""

    def __init__(self, listing_id: int) -> None:
        super().__init__(
            f"listing {listing_id} is reserved for a card buyer who is paying for it; if "
            "their payment window lapses it is back on the market"
        )
        self.listing_id = listing_id


class NotListingBuyer(ResaleError):
    """Raised when a private listing (its order names its buyer) is asked for by another."""

    def __init__(self, listing_id: int) -> None:
        super().__init__(f"listing {listing_id} is a private sale to another wallet")
        self.listing_id = listing_id


class CardPayoutNotAllowed(ResaleError):
    """Raised when a seller asks to be paid back by card for a ticket they didn't buy by card
    (or whose card payment can't be refunded any more)."""

    def __init__(self, token_id: int, reason: str) -> None:
        super().__init__(
            f'ticket {token_id} can\'t be paid out by card: {reason}; choose payout "ether"'
        )
        self.token_id = token_id
        self.reason = reason


class CardPayoutTooHigh(ResaleError):
    """Raised when a card payout would refund more than the card paid for the ticket."""

    def __init__(self, token_id: int, payout_cents: int, limit_cents: int, currency: str) -> None:
        super().__init__(
            f"a card payout of {payout_cents} {currency} minor units for ticket {token_id} "
            f"would refund more than its card paid for it ({limit_cents}): choose payout "
            '"ether" or lower the price'
        )
        self.token_id = token_id
        self.payout_cents = payout_cents
        self.limit_cents = limit_cents


class CardRailUnavailable(ResaleError):
    """Raised when the card rail can't price a listing (no FAIRTIX_WEI_PER_CENT rate)."""

    def __init__(self) -> None:
        super().__init__("card payments are not available for resale: no wei-per-cent rate")
