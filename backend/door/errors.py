"""Exceptions raised by the door.

* DoorError
  + ScannerNotAuthenticated     no scanner credential, an unknown one, or a wallet's token
  + ScannerRevoked              the device's credential was revoked
  + ScannerNotFound             a device id names no device of the event
  + ScanTimeOutOfWindow         scanned_at is too far in the future or the past
  + TicketNotFound              the caller holds no such ticket of ours
  + EntryCodesNotYetRevealed    the ticket's codes are shown only from the organizer's time
  + TicketNotEnterable          the ticket is refunded/burned or its event cancelled

Refusals at the gate (a used ticket, a code expired, forged or of a previous holder, another
event's code) are not exceptions: they are answers (``service.ScanAnswer``), recorded and
counted like admissions.
"""

from __future__ import annotations

from datetime import datetime


class DoorError(Exception):
    """Root of every door error."""


class ScannerNotAuthenticated(DoorError):
    """Raised when a request to a scanner route carries no valid scanner credential."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ScannerRevoked(DoorError):
    """Raised when a revoked device sends anything: it admits nobody and changes nothing."""

    def __init__(self, device_id: int, revoked_at: datetime) -> None:
        super().__init__(
            f"scanner device {device_id} was revoked at {revoked_at.isoformat()}; "
            "ask the organizer for a new credential"
        )
        self.device_id = device_id
        self.revoked_at = revoked_at


class ScannerNotFound(DoorError):
    """Raised when a device id names no scanner device of the event."""

    def __init__(self, event_id: int, device_id: int) -> None:
        super().__init__(f"event {event_id} has no scanner device {device_id}")
        self.event_id = event_id
        self.device_id = device_id


class ScanTimeOutOfWindow(DoorError):
    """Raised when a scan's ``scanned_at`` is further ahead of the service's clock than clocks
    drift, or older than a gate may stay offline."""

    def __init__(self, scanned_at: datetime, earliest: datetime, latest: datetime) -> None:
        super().__init__(
            f"scanned_at {scanned_at.isoformat()} is outside the accepted window "
            f"{earliest.isoformat()} .. {latest.isoformat()}; check the device's clock"
        )
        self.scanned_at = scanned_at
        self.earliest = earliest
        self.latest = latest


class TicketNotFound(DoorError):
    """Raised when the caller asks for the entry code of a ticket it does not hold."""

    def __init__(self, token_id: int) -> None:
        super().__init__(f"you hold no ticket with token id {token_id}")
        self.token_id = token_id


class EntryCodesNotYetRevealed(DoorError):
    """Raised when a ticket's entry code is asked for before the organizer's reveal time."""

    def __init__(self, token_id: int, reveal_at: datetime) -> None:
        super().__init__(
            f"the entry code of ticket {token_id} is shown from {reveal_at.isoformat()}"
        )
        self.token_id = token_id
        self.reveal_at = reveal_at


class TicketNotEnterable(DoorError):
    """Raised when the entry code of a ticket that can't get anyone in any more is asked for."""

    def __init__(self, token_id: int, reason: str) -> None:
        super().__init__(f"ticket {token_id} can't be used for entry: {reason}")
        self.token_id = token_id
        self.reason = reason
