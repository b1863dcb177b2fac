"""Webhook idempotency records and the sandbox card processor's own ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, UTCDateTime, utcnow


class ProcessedWebhook(Base):
    """A provider event we have acted on; a replay of the same id changes nothing."""

    __tablename__ = "processed_webhooks"

    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SandboxPaymentIntent(Base):
    """The sandbox processor's record of a PaymentIntent, shaped like Stripe's object."""

    __tablename__ = "sandbox_payment_intents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_secret: Mapped[str] = mapped_column(String(128))
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(40))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    intent_metadata: Mapped[dict[str, Any]] = mapped_column(JSON)
    last_payment_error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Like a Stripe charge's amount_refunded: what refunds gave back so far (minor units).
    amount_refunded: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SandboxRefund(Base):
    """One refund on a sandbox intent, whole or partial, by its idempotency key: a retry under
    the same key finds it and refunds nothing more."""

    __tablename__ = "sandbox_refunds"

    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    intent_id: Mapped[str] = mapped_column(ForeignKey("sandbox_payment_intents.id"), index=True)
    amount: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
