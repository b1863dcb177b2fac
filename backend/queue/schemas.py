"""Response bodies of the queue routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class QueueStatusOut(BaseModel):
    event_id: int
    wallet: str
    state: Literal["waiting", "admitted", "done", "expired"]
    position: int = Field(description="Wallets ahead of you; 0 once admitted")
    eta_seconds: int | None = Field(
        description="From the measured admission rate; null until measured"
    )
    admission_expires_at: datetime | None
    sale_opens_at: datetime
    token: str = Field(
        description="Signed queue token: present it as X-Queue-Token to keep your place"
    )
