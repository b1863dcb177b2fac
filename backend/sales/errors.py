"""Exceptions raised by the sales domain.

* SalesError
  + OrderNotFound
  + TierNotFound
  + SaleNotOpen
  + QuantityNotAllowed
  + SoldOut
  + OrderInProgress
  + IllegalTransition
  + OrderNotPayable
  + PaymentMethodConflict
  + RefundNotYet
"""

from __future__ import annotations


class SalesError(Exception):
    """Root of every sales error."""


class OrderNotFound(SalesError):
    """Raised when an order id names no order the caller may see."""

    def __init__(self, order_id: int) -> None:
        super().__init__(f"there is no order with id {order_id}")
        self.order_id = order_id


class TierNotFound(SalesError):
    """Raised when an order names a tier that is not part of the event."""

    def __init__(self, event_id: int, tier_id: int) -> None:
        super().__init__(f"event {event_id} has no tier {tier_id}")
        self.event_id = event_id
        self.tier_id = tier_id


class SaleNotOpen(SalesError):
    """Raised when buying before the sale opens or after the event started."""

    def __init__(self, event_id: int, reason: str) -> None:
        super().__init__(f"tickets for event {event_id} are not on sale: {reason}")
        self.event_id = event_id
        self.reason = reason


class QuantityNotAllowed(SalesError):
    """Raised when an order asks for more tickets than one order may hold."""

    def __init__(self, quantity: int, maximum: int) -> None:
        super().__init__(f"an order may hold 1 to {maximum} tickets, not {quantity}")
        self.quantity = quantity
        self.maximum = maximum


class SoldOut(SalesError):
    """Raised when a tier has fewer seats left than the order asks for."""

    def __init__(self, tier_id: int, requested: int, remaining: int) -> None:
        detail = "the tier is sold out" if remaining == 0 else f"only {remaining} left"
        super().__init__(f"cannot hold {requested} ticket(s) in tier {tier_id}: {detail}")
        self.tier_id = tier_id
        self.requested = requested
        self.remaining = remaining


class OrderInProgress(SalesError):
    """Raised when the wallet already has an unpaid order for the event."""

    def __init__(self, order_id: int | None) -> None:
        which = "an order" if order_id is None else f"order {order_id}"
        super().__init__(f"{which} for this event is still open; pay or cancel it before a new one")
        self.order_id = order_id


class IllegalTransition(SalesError):
    """Raised when an order is asked to move to a state its current state can't reach."""

    def __init__(self, order_id: int, from_status: str, to_status: str) -> None:
        super().__init__(f"order {order_id} cannot go from {from_status} to {to_status}")
        self.order_id = order_id
        self.from_status = from_status
        self.to_status = to_status


class OrderNotPayable(SalesError):
    """Raised when checkout is asked for an order that is no longer waiting for payment."""

    def __init__(self, order_id: int, status: str) -> None:
        super().__init__(f"order {order_id} is {status} and can't be paid")
        self.order_id = order_id
        self.status = status


class PaymentMethodConflict(SalesError):
    """Raised when checkout asks for another payment method than the one the order's payment
    already started with (paying twice must not be possible)."""

    def __init__(self, order_id: int, started: str, requested: str) -> None:
        super().__init__(
            f"order {order_id} is being paid by {started}; it can't be paid by {requested} too"
        )
        self.order_id = order_id
        self.started = started
        self.requested = requested


class RefundNotYet(SalesError):
    """Raised (to the worker, which retries later) when a queued refund must wait: the order's
    tickets are being minted, and the money goes back once the mint is recorded or proven
    impossible."""

    def __init__(self, order_id: int, reason: str) -> None:
        super().__init__(f"order {order_id} can't be refunded yet: {reason}")
        self.order_id = order_id
        self.reason = reason


class HolderRefundNotYet(RefundNotYet):
    """A cancelled event's holder refunds must wait (the worker retries later): the indexer has
    not passed the cancellation's block yet, or a refund's ether transfer is not mined or not
    confirmed yet. It names what waits, not an order."""

    def __init__(self, reason: str) -> None:
        SalesError.__init__(self, f"holder refunds can't go on yet: {reason}")
        self.order_id = 0
        self.reason = reason
