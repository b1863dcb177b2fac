"""Types shared by every router's request validation."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field

# Row ids are INTEGER primary keys (32-bit signed on PostgreSQL; SQLite's are wider): a larger
# id can't name a row, and PostgreSQL refuses to even compare one with the column, so it must be
# a 422 here, on both databases alike, never a database error.
MAX_ID = 2**31 - 1

IdPath = Annotated[int, Path(gt=0, le=MAX_ID)]
IdField = Annotated[int, Field(gt=0, le=MAX_ID)]
