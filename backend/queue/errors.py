"""Exceptions raised by the waiting room.

* QueueError
  + QueueNotOpen
  + QueueClosed
  + NotInQueue
  + NotAdmitted
  + NotEventOrganizer
  + QueueUnavailable
  + ShuffleNotDone
  + InvalidQueueToken
    - QueueTokenExpired
    - ForeignQueueToken
"""

from __future__ import annotations

from datetime import datetime


class QueueError(Exception):
    """Root of every waiting-room error."""


class QueueNotOpen(QueueError):
    """Raised when joining a queue before the time its organizer set for it to open."""

    def __init__(self, event_id: int, opens_at: datetime) -> None:
        super().__init__(
            f"the queue for event {event_id} opens at {opens_at.isoformat()}; join then"
        )
        self.event_id = event_id
        self.opens_at = opens_at


class QueueClosed(QueueError):
    """Raised when taking a new place in a queue that takes no more (started, sold out, closed)."""

    def __init__(self, event_id: int, reason: str) -> None:
        super().__init__(f"the queue for event {event_id} is closed: {reason}")
        self.event_id = event_id
        self.reason = reason


class NotInQueue(QueueError):
    """Raised when a wallet asks for its place in a queue it never joined."""

    def __init__(self, event_id: int, wallet: str) -> None:
        super().__init__(f"wallet {wallet} has not joined the queue for event {event_id}")
        self.event_id = event_id
        self.wallet = wallet


class NotAdmitted(QueueError):
    """Raised when a wallet tries to buy without a current admission from the queue."""

    def __init__(self, event_id: int, wallet: str) -> None:
        super().__init__(
            f"wallet {wallet} holds no current admission for event {event_id}; "
            "join the queue and wait until you are admitted"
        )
        self.event_id = event_id
        self.wallet = wallet


class NotEventOrganizer(QueueError):
    """Raised when someone other than the event's organizer or an admin steers its queue."""

    def __init__(self, event_id: int, wallet: str) -> None:
        super().__init__(
            f"wallet {wallet} is neither the organizer of event {event_id} nor an admin"
        )
        self.event_id = event_id
        self.wallet = wallet


class QueueUnavailable(QueueError):
    """Raised when the queue store can't be reached; nothing was changed, retry shortly."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the waiting room is briefly unavailable ({reason}); retry shortly")
        self.reason = reason


class InvalidQueueToken(QueueError):
    """Raised when a presented queue token is forged or malformed."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"queue token rejected: {reason}")
        self.reason = reason


class QueueTokenExpired(InvalidQueueToken):
    """Raised when a queue token is older than its lifetime; sign in and fetch a new one."""

    def __init__(self, issued_at: int) -> None:
        super().__init__(
            "the token has expired; sign in again and GET /events/{id}/queue/me for a fresh one"
        )
        self.issued_at = issued_at


class ForeignQueueToken(InvalidQueueToken):
    """Raised when a genuine queue token is presented for another event or by another wallet."""

    def __init__(self) -> None:
        super().__init__("the token was issued for another event or wallet")


class ShuffleNotDone(QueueError):
    """Raised when asking for the pre-sale shuffle's seed before the shuffle has happened."""

    def __init__(self, event_id: int) -> None:
        super().__init__(
            f"the pre-sale order of event {event_id} is drawn when its sale starts; "
            "the seed is published then, not before"
        )
        self.event_id = event_id
