"""Request and response bodies of the webhook and contact routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from backend.schemas import IdField

NotificationKind = Literal[
    "order.fulfilled",
    "ticket.transferred",
    "event.cancelled",
    "order.disputed",
    "listing.created",
    "listing.cancelled",
    "ticket.resold",
]


class WebhookCreate(BaseModel):
    url: str = Field(
        min_length=1,
        max_length=2000,
        description="http(s) URL that receives POSTed JSON notifications",
        examples=["https://organizer.example/fairtix/hooks"],
    )
    events: list[NotificationKind] = Field(
        min_length=1, max_length=7, description="Notification kinds to receive"
    )
    event_id: IdField | None = Field(
        default=None,
        description="Only this event's notifications; omitted: every event you organize",
    )


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[NotificationKind]
    event_id: int | None
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="Signing secret for Fairtix-Signature. Shown once: store it now; "
        "register a new endpoint to get another"
    )


class DeliveryOut(BaseModel):
    delivery_id: str = Field(description="Sent as Fairtix-Event-Id; the same on every retry")
    kind: NotificationKind
    status: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int
    last_status_code: int | None = Field(description="HTTP status of the latest attempt")
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    finished_at: datetime | None


class ContactIn(BaseModel):
    email: str = Field(
        min_length=3,
        max_length=254,
        description="Where order receipts go. Kept off chain; DELETE /me/contact removes it",
        examples=["buyer@example.org"],
    )


class ContactOut(BaseModel):
    address: str
    email: str
