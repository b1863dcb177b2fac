"""Exceptions raised by the catalog domain.

* CatalogError
  + EventNotFound
  + InvalidEvent
  + EventDeploymentFailed
"""

from __future__ import annotations


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
