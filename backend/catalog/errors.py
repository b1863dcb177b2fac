"""Exceptions raised by the catalog domain.

* CatalogError
  + EventNotFound
  + InvalidEvent
  + EventDeploymentFailed
  + EventCancelled
  + EventOver
"""

from __future__ import annotations

from datetime import datetime


class CatalogError(Exception):
    """Root of every catalog error."""


class EventNotFound(CatalogError):
    """Raised when an event id names no event."""

    def __init__(self, event_id: int) -> None:
        super().__init__(f"there is no event with id {event_id}")
        self.event_id = event_id


class InvalidEvent(CatalogError):
    """Raised when an event definition is inconsistent (dates, tiers)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EventDeploymentFailed(CatalogError):
    """Raised when the event's ticket contract could not be deployed; nothing was recorded."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the event's ticket contract could not be deployed: {reason}")
        self.reason = reason


class EventCancelled(CatalogError):
    """Raised when something needs an event that is not cancelled: buying its tickets, paying
    for them, or cancelling it again."""

    def __init__(self, event_id: int, reason: str | None) -> None:
        why = f" ({reason})" if reason else ""
        super().__init__(f"event {event_id} was cancelled{why}; its tickets are not on sale")
        self.event_id = event_id
        self.reason = reason


class EventOver(CatalogError):
    """Raised when an event that has already ended is to be cancelled."""

    def __init__(self, event_id: int, ended_at: datetime) -> None:
        super().__init__(
            f"event {event_id} ended at {ended_at.isoformat()}; an event that took place "
            "can't be cancelled"
        )
        self.event_id = event_id
        self.ended_at = ended_at
