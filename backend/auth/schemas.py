"""Request and response bodies of the auth routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"


class NonceOut(BaseModel):
    nonce: str
    expires_at: datetime
    domain: str = Field(description="Put this in the message's domain line")
    uri: str = Field(description="Put this in the message's URI field")
    chain_id: int = Field(description="Put this in the message's Chain ID field")
    version: Literal["1"] = "1"
    statement: str


class VerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=10_000, description="The EIP-4361 message text")
    signature: str = Field(
        min_length=1, max_length=200, description="0x-hex personal_sign signature"
    )


class SessionOut(BaseModel):
    token: str
    token_type: Literal["bearer"] = "bearer"
    address: str
    expires_at: datetime


class MeOut(BaseModel):
    address: str
    roles: list[str]


class RoleGrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str = Field(pattern=ADDRESS_PATTERN)
    role: Literal["organizer", "scanner"]
