"""POST /orders answers from what it wrote; the answer must be what GET /orders/{id} reads."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.payments.orders import held_order

pytestmark = pytest.mark.db


def test_a_new_order_is_answered_as_get_would_answer_it(client: TestClient) -> None:
    buyer, placed = held_order(client)
    assert placed["status"] == "held"
    assert [(t["from_status"], t["to_status"]) for t in placed["transitions"]] == [(None, "held")]
    assert placed["token_ids"] == [] and placed["refund"]["state"] == "none"
    assert buyer.order(placed["id"]) == placed
