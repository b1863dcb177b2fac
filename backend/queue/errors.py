"""Exceptions raised by the waiting room.

* QueueError
  + QueueClosed
  + NotInQueue
  + NotAdmitted
  + InvalidQueueToken
"""

from __future__ import annotations


class QueueError(Exception):
    """Root of every waiting-room error."""


class QueueClosed(QueueError):
    """Raised when joining a queue that is not open (event started, or sold out)."""

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


class InvalidQueueToken(QueueError):
    """Raised when a presented queue token is forged, malformed or belongs to someone else."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"queue token rejected: {reason}")
        self.reason = reason
