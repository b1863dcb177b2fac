"""Exceptions raised by the payments domain.

* PaymentError
  + WebhookRejected
  + PaymentIntentNotFound
  + CardRejected
  + PaymentNotApproved
  + PaymentDeclined
  + ProviderUnavailable
  + ProviderRejected
"""

from __future__ import annotations


class PaymentError(Exception):
    """Root of every payments error."""


class WebhookRejected(PaymentError):
    """Raised when a webhook's signature is missing, forged or stale, or its body is unreadable."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"webhook rejected: {reason}")
        self.reason = reason


class PaymentIntentNotFound(PaymentError):
    """Raised when the sandbox is asked about a payment intent it never created."""

    def __init__(self, intent_id: str) -> None:
        super().__init__(f"there is no payment intent {intent_id}")
        self.intent_id = intent_id


class CardRejected(PaymentError):
    """Raised when the sandbox can't charge the card at all (not a test card, bad secret).

    A declined test card is not this error: a decline is a normal outcome delivered by webhook.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PaymentNotApproved(PaymentError):
    """Raised when a PayPal order is captured before the buyer approved it at PayPal."""

    def __init__(self, payment_id: str) -> None:
        super().__init__(
            f"PayPal order {payment_id} has not been approved by the buyer yet; "
            "send the buyer to its approve_url first"
        )
        self.payment_id = payment_id


class PaymentDeclined(PaymentError):
    """Raised when the buyer's funding source was declined at capture; the buyer may approve
    the same payment again with another funding source."""

    def __init__(self, payment_id: str, reason: str) -> None:
        super().__init__(f"payment {payment_id} was declined: {reason}")
        self.payment_id = payment_id
        self.reason = reason


class ProviderUnavailable(PaymentError):
    """Raised when the provider's API can't be reached, fails, or refuses our credentials."""

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(f"{provider} is unavailable: {reason}")
        self.provider = provider
        self.reason = reason


class ProviderRejected(PaymentError):
    """Raised when the provider answers a request with an error we did not expect to cause."""

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(f"{provider} refused the request: {reason}")
        self.provider = provider
        self.reason = reason
