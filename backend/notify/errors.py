"""Exceptions raised by the notify domain.

* NotifyError
  + WebhookNotFound
  + InvalidWebhook
    - InvalidWebhookUrl
  + WebhookEventForbidden
  + InvalidContact
  + ContactNotFound
  + UnknownNotification
  + WebhookSignatureError
  + DeliveryFailed
"""

from __future__ import annotations


class NotifyError(Exception):
    """Root of every notify error."""


class WebhookNotFound(NotifyError):
    """Raised when a webhook endpoint id names no endpoint of the caller's (or a deleted one)."""

    def __init__(self, endpoint_id: int) -> None:
        super().__init__(f"you have no webhook endpoint with id {endpoint_id}")
        self.endpoint_id = endpoint_id


class InvalidWebhook(NotifyError):
    """Raised when a webhook registration can't be accepted as given."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidWebhookUrl(InvalidWebhook):
    """Raised when a webhook URL is not http(s) or points somewhere we refuse to call."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"webhook URL {url!r} is not accepted: {reason}")
        self.url = url


class WebhookEventForbidden(NotifyError):
    """Raised when an organizer registers a webhook for an event someone else organizes."""

    def __init__(self, event_id: int, address: str) -> None:
        super().__init__(f"{address} does not organize event {event_id}")
        self.event_id = event_id
        self.address = address


class InvalidContact(NotifyError):
    """Raised when a contact e-mail address is not one we can send to."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ContactNotFound(NotifyError):
    """Raised when a wallet has no contact e-mail on file."""

    def __init__(self, address: str) -> None:
        super().__init__(f"no contact e-mail is on file for {address}")
        self.address = address


class UnknownNotification(NotifyError):
    """Raised when code publishes a notification kind receivers can't subscribe to."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"{kind!r} is not a notification kind")
        self.kind = kind


class WebhookSignatureError(NotifyError):
    """Raised by :func:`~backend.notify.signing.verify_signature` when a delivery is not ours."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"webhook signature rejected: {reason}")
        self.reason = reason


class DeliveryFailed(NotifyError):
    """Raised by the worker's handlers when a delivery should be tried again later."""

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"delivery to {target} failed: {reason}")
        self.target = target
        self.reason = reason
