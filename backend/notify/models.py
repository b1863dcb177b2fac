"""Webhook endpoints and their delivery log; contact e-mails and receipt records."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, UTCDateTime, utcnow


class WebhookEndpoint(Base):
    """A URL an organizer (or admin) registered for signed event notifications.

    Scoped to one event when ``event_id`` is set, else to every event its owner organizes.
    Deleting one only sets ``deleted_at``: its delivery log stays for the record, and deliveries
    still queued for it are dropped when the worker reaches them.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_address: Mapped[str] = mapped_column(String(42), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"), nullable=True, index=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON)
    # Not the secret: the signing secret is HMAC(service secret, salt), see service.endpoint_secret.
    secret_salt: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WebhookDelivery(Base):
    """One notification for one endpoint, with the outcome of its latest attempt."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    # Sent as Fairtix-Event-Id: the same on every retry, so receivers can drop duplicates.
    delivery_id: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    # The exact bytes every attempt sends (and signs), fixed when the notification is published.
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ContactEmail(Base):
    """The e-mail a wallet gave for receipts. Personal data: kept off chain and off IPFS, and
    deleted outright when the buyer removes it."""

    __tablename__ = "contact_emails"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


# What became of a receipt (Receipt.status); "failed" when the relay refused it.
RECEIPT_SENT, RECEIPT_SKIPPED = "sent", "skipped"
NO_CONTACT = "the buyer gave no contact e-mail"
NO_SMTP = "SMTP is not configured"


class Receipt(Base):
    """What became of an order's receipt; makes a re-run receipt message a no-op.

    Holds no address: where it went is the buyer's contact row, which they may delete.
    """

    __tablename__ = "receipts"

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
