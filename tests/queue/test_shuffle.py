"""The pre-sale shuffle is exactly the documented algorithm, so anyone can recompute it."""

from __future__ import annotations

import hashlib
import hmac

from backend.queue import shuffle


def test_order_is_wallets_sorted_by_hmac_sha256_of_the_seed() -> None:
    seed = "00" * 31 + "2a"
    wallets = [f"0x{n:040x}" for n in range(1, 9)]
    by_hand = sorted(
        wallets, key=lambda w: hmac.new(bytes.fromhex(seed), w.encode(), hashlib.sha256).digest()
    )
    assert shuffle.shuffled(seed, [w.upper().replace("0X", "0x") for w in wallets]) == by_hand
    assert shuffle.order_digest(by_hand) == hashlib.sha256("\n".join(by_hand).encode()).hexdigest()


def test_each_seed_is_fresh_and_gives_its_own_order() -> None:
    wallets = [f"0x{n:040x}" for n in range(1, 30)]
    seeds = {shuffle.new_seed() for _ in range(5)}
    assert len(seeds) == 5 and all(len(seed) == 64 for seed in seeds)
    assert len({tuple(shuffle.shuffled(seed, wallets)) for seed in seeds}) == 5
