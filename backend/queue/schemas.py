"""Request and response bodies of the queue routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class QueueStatusOut(BaseModel):
    event_id: int
    wallet: str
    state: Literal["waiting", "away", "admitted", "done", "expired"]
    presale: bool = Field(description="Joined before the sale started: ordered by the shuffle")
    position: int | None = Field(
        description="Wallets ahead of you; 0 once admitted; null until the pre-sale shuffle"
    )
    eta_seconds: int | None = Field(
        description="From the admissions actually granted recently; null until there are some"
    )
    admission_expires_at: datetime | None
    sale_opens_at: datetime
    paused: bool = Field(description="The organizer has paused admissions; your place is kept")
    outflow_per_minute: float | None = Field(
        description="Admissions granted per minute, measured over the last two minutes"
    )
    poll_after_seconds: int | None = Field(
        description="Ask again in this many seconds (polling sooner gains nothing); always "
        "inside the grace period that keeps your turn. Null once admitted or done"
    )
    token: str = Field(
        description="Signed queue token: present it as X-Queue-Token (or ?queue_token= on the "
        "stream) to keep your place on any replica"
    )


class ControlsOut(BaseModel):
    paused: bool
    closed: bool
    admissions_per_minute: int
    max_admitted: int


class RatesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    admissions_per_minute: int | None = Field(default=None, gt=0, le=1_000_000)
    max_admitted: int | None = Field(default=None, gt=0, le=100_000)


class QueueAdminOut(BaseModel):
    event_id: int
    waiting: int = Field(description="Places in line (pre-sale arrivals included)")
    presale_unshuffled: int = Field(description="Pre-sale arrivals still waiting for the shuffle")
    away: int = Field(description="Set aside when their turn came: unseen for the grace period")
    admitted: int = Field(description="Current admissions (capped by max_admitted)")
    done: int = Field(description="Admissions that ended in a purchase")
    expired: int = Field(description="Admissions that lapsed unused")
    measured_outflow_per_minute: float | None
    abandonment_rate: float | None = Field(
        description="(expired + away) / (everyone whose turn came); null before any turn came"
    )
    controls: ControlsOut
    shuffled_at: datetime | None


class ShuffleOut(BaseModel):
    event_id: int
    algorithm: str
    seed: str = Field(description="Hex; drawn when the sale started, published after the shuffle")
    shuffled_at: datetime
    participants: int
    order_sha256: str = Field(description="SHA-256 of the order, one lowercase wallet per line")
    order: list[str] = Field(description="Pre-sale wallets, first in line first")
