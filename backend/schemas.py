"""Types shared by every router's request validation."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field

# Ids live in 64-bit signed columns; anything larger can't name a row and must be a 4xx, not a
# database overflow.
MAX_ID = 2**63 - 1

IdPath = Annotated[int, Path(gt=0, le=MAX_ID)]
IdField = Annotated[int, Field(gt=0, le=MAX_ID)]
