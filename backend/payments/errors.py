"""Exceptions raised by the payments domain.

* PaymentError
  + WebhookRejected
  + PaymentIntentNotFound
  + CardRejected
  + ProviderUnavailable
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


class ProviderUnavailable(PaymentError):
    """Raised when the card provider's API can't be reached or answers with an error."""

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(f"{provider} is unavailable: {reason}")
        self.provider = provider
        self.reason = reason
