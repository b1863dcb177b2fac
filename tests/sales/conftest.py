"""Fixtures of the sales tests."""

from __future__ import annotations

import pytest

from backend.runtime import Runtime


@pytest.fixture
def provider_refunds(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every refund the payment provider is asked for, by payment id."""
    asked: list[str] = []
    refund = runtime.cards.refund

    def spy(payment_id: str, idempotency_key: str, amount_cents: int | None = None) -> None:
        asked.append(payment_id)
        refund(payment_id, idempotency_key=idempotency_key, amount_cents=amount_cents)

    monkeypatch.setattr(runtime.cards, "refund", spy)
    return asked
