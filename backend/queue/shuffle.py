"""The pre-sale shuffle: a published, recomputable random order for everyone who came early.

Algorithm (documented in docs/waiting-room.md, stable; change it only with a new ``ALGORITHM``
name):

1. At the moment the sale starts, draw ``seed``: 32 bytes from the OS CSPRNG. It exists nowhere
   before then, so nobody (us included) can know or steer the order in advance.
2. For every pre-sale wallet ``w`` (lowercase 0x-hex, as ASCII), compute
   ``key(w) = HMAC-SHA256(key=seed, msg=w)``.
3. The order is the wallets sorted by ``key`` ascending (bytewise), ties by ``w``.
4. Publish ``seed`` (hex) and the order: anyone can recompute step 2-3 and compare.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

ALGORITHM = "sort-by-hmac-sha256(seed, lowercase-wallet)"


def new_seed() -> str:
    return secrets.token_hex(32)


def shuffle_key(seed: str, wallet: str) -> bytes:
    return hmac.new(bytes.fromhex(seed), wallet.lower().encode("ascii"), hashlib.sha256).digest()


def shuffled(seed: str, wallets: Iterable[str]) -> list[str]:
    """The pre-sale order for ``seed``: first in line first."""
    return sorted((w.lower() for w in wallets), key=lambda w: (shuffle_key(seed, w), w))


def order_digest(order: Iterable[str]) -> str:
    """SHA-256 of the order, one wallet per line: a short fingerprint to compare."""
    return hashlib.sha256("\n".join(order).encode("ascii")).hexdigest()
