"""Paired comparison of two versions' server CPU per request (``make bench-paired``).

On a shared 2-core machine the CPU one version needs for the same work moves by 10-30% from one
minute to the next, so two bench-onsale runs, one per version, can't tell a 10% change from
noise. This runs both versions at once instead: version A (a git revision, checked out into a
temporary worktree) and version B (this working tree) each serve one uvicorn worker against
their own fresh PostgreSQL database, sharing one anvil and Redis. The same sequence of requests
goes to both in alternating chunks of ``--chunk`` requests, and each chunk's server CPU is read
from /proc, so whatever the machine does in between weighs on both sides alike.

Requests, one buyer at a time, per side: sign-in (nonce and verify), join the waiting room, one
status poll, ``GET /livez`` (the framework's own cost), ``POST /orders`` with the card checkout,
the sandbox confirmation, and the payment webhook the sandbox queued, signed and POSTed by this
script (the worker that would deliver it is not started, so no mint runs); then the door: a
gate's scan of each of as many tickets (admitted) and the same again (refused, already used);
then a listing's two requests: ``POST /listings/sell-order`` (the typed data to sign) and
``POST /listings`` (the signed order), by holders of tickets minted beforehand on the shared
anvil, as bench-resale seeds them (half asking for a card payout).

Prints, per request kind, A's and B's server CPU in ms per request and B/A; writes the figures
to bench/results/paired.json. Needs PostgreSQL and Redis (as bench-onsale) and drops and
recreates the databases ``fairtix_paired_a`` and ``fairtix_paired_b``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from eth_account import Account

from backend.chain.client import ChainClient, connect_rpc
from backend.chain.deploy import deploy_factory_if_needed
from backend.chain.devnet import Devnet, devnet_account
from backend.demo import FairtixClient
from backend.payments.sandbox import DELIVER_WEBHOOK, sign_stripe_payload
from bench.door import Phones, Presentation, _seed
from bench.onsale import (
    ROOT,
    SUCCESS_CARD,
    Buyer,
    RawHttp,
    _env,
    _fresh_database,
    _process_cpu,
)
from bench.queue import _free_port, _wait_live
from bench.resale import Holder, _sign_typed
from bench.resale import _seed as seed_holders
from bench.results_md import RESULTS_MD, replace_section

RESULTS_JSON = ROOT / "bench" / "results" / "paired.json"
SECTION_START = "<!-- bench-paired:start -->"
SECTION_END = "<!-- bench-paired:end -->"
# What the benchmarks write, which doesn't make the tree's code differ from its commit.
NOT_CODE = (":!bench/RESULTS.md", ":!bench/results")
WEBHOOK_SECRET = "whsec_paired_" + secrets.token_hex(16)

Request = Callable[[], Awaitable[Any]]


@dataclass
class Side:
    """One version's server, its event and its buyers."""

    name: str
    pid: int
    port: int
    database_url: str
    event_id: int
    tier_id: int
    http: RawHttp
    secret: bytes
    scanner: str  # a scanner device's credential for the event's door
    buyers: list[Buyer] = field(default_factory=list)
    intents: dict[int, dict[str, Any]] = field(default_factory=dict)
    phones: Phones | None = None
    face_wei: int = 0
    holders: list[tuple[Holder, Buyer]] = field(default_factory=list)
    typed: dict[int, dict[str, Any]] = field(default_factory=dict)


def _worktree(revision: str, stack: ExitStack) -> Path:
    """``revision`` checked out beside this tree, sharing its node_modules; removed at exit."""
    parent = Path(tempfile.mkdtemp(prefix="fairtix-paired-"))
    # Registered first, so it runs last: after the worktree is removed.
    stack.callback(shutil.rmtree, parent, ignore_errors=True)
    path = parent / "tree"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(path), revision],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    stack.callback(
        subprocess.run,
        ["git", "worktree", "remove", "--force", str(path)],
        cwd=ROOT, check=False, capture_output=True,
    )  # fmt: skip
    (path / "node_modules").symlink_to(ROOT / "node_modules")
    return path


def _start_side(name: str, tree: Path, rpc_url: str, factory: str, workdir: Path,
                stack: ExitStack) -> Side:  # fmt: skip
    database_url = _fresh_database(f"fairtix_paired_{name.lower()}")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    organizer = Account.create()
    prefix = f"fairtix-paired-{name}-{secrets.token_hex(3)}"
    env = _env(base, database_url, rpc_url, factory, prefix, organizer.address, workdir / name)
    # The tree's own backend package, not the one installed in the venv (this tree, editable).
    env["PYTHONPATH"] = str(tree)
    env["FAIRTIX_STRIPE_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    # All requests come from 127.0.0.1: budgets no run reaches (older revisions ignore these).
    env["FAIRTIX_RATE_LIMIT_PER_CLIENT"] = "100000000/minute"
    env["FAIRTIX_RATE_LIMIT_SIGN_IN"] = "100000000/minute"
    env["FAIRTIX_RATE_LIMIT_DOOR"] = "100000000/minute"
    log = workdir / f"api-{name}.log"
    server = subprocess.Popen(
        [sys.executable, "-c", f"from bench.queue import serve; serve({port}, workers=1)"],
        cwd=tree, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    stack.callback(server.wait)
    stack.callback(server.terminate)
    _wait_live(port, server, log)
    with httpx.Client(base_url=base, timeout=60) as http:
        client = FairtixClient(http, organizer)
        client.sign_in()
        now = datetime.now(UTC)
        event = client.create_event(
            f"paired {name}",
            [{"name": "General Admission", "price_cents": 2500, "supply": 1_000_000}],
            sale_opens_at=(now + timedelta(seconds=2)).isoformat(),
            queue_opens_at=now.isoformat(),
            max_admitted=100_000,
            admissions_per_minute=1_000_000,
            max_tickets_per_order=4,
        )
        scanner = http.post(
            f"/admin/events/{event['id']}/scanners",
            json={"gate": "Gate 1"},
            headers={"Authorization": f"Bearer {client.token}"},
        )
        scanner.raise_for_status()
    return Side(name, server.pid, port, database_url, int(event["id"]),
                int(event["tiers"][0]["id"]), RawHttp(port, 2),
                env["FAIRTIX_SECRET_KEY"].encode(), scanner.json()["credential"],
                face_wei=int(event["tiers"][0]["price_wei"]))  # fmt: skip


async def _phase(sides: list[Side], chunk: int, requests: Callable[[Side], list[Request]]
                 ) -> dict[str, float]:  # fmt: skip
    """Each side's server CPU ms per request, its requests sent in alternating chunks."""
    queued = {side.name: requests(side) for side in sides}
    cpu = dict.fromkeys(queued, 0.0)
    for start in range(0, max(len(q) for q in queued.values()), chunk):
        for side in sides:
            before = _process_cpu(side.pid)
            for request in queued[side.name][start : start + chunk]:
                await request()
            cpu[side.name] += _process_cpu(side.pid) - before
    return {name: 1000 * cpu[name] / max(len(queued[name]), 1) for name in queued}


def _join(side: Side, buyer: Buyer) -> Request:
    return lambda: buyer.join(side.event_id)


def _livez(side: Side) -> Request:
    return lambda: side.http.ok("GET", "/livez")


def _status(side: Side, buyer: Buyer) -> Request:
    path = f"/events/{side.event_id}/queue/me"
    return lambda: side.http.ok("GET", path, {"X-Queue-Token": buyer.queue_token})


def _hold_and_checkout(side: Side, index: int, buyer: Buyer) -> Request:
    async def request() -> None:
        body = {"event_id": side.event_id, "tier_id": side.tier_id, "quantity": 2,
                "checkout": {"method": "card"}}  # fmt: skip
        placed = await side.http.ok("POST", "/orders", buyer._auth(), body)
        side.intents[index] = placed["checkout"]["payment_intent"]

    return request


def _confirm(side: Side, index: int) -> Request:
    async def request() -> None:
        intent = side.intents[index]
        card = {"client_secret": intent["client_secret"], "card_number": SUCCESS_CARD}
        await side.http.ok("POST", f"/sandbox/payment_intents/{intent['id']}/confirm", body=card)

    return request


def _webhooks(side: Side) -> list[Request]:
    """The sandbox's queued payment events, POSTed as its worker would: signed, byte-exact."""
    with psycopg.connect(side.database_url) as conn:
        events = [
            row[0]["event"]
            for row in conn.execute(
                "SELECT payload FROM outbox WHERE kind = %s ORDER BY id", (DELIVER_WEBHOOK,)
            )
        ]

    def deliver(event: dict[str, Any]) -> Request:
        async def request() -> None:
            body = json.dumps(event, separators=(",", ":")).encode()
            signature = sign_stripe_payload(body.decode(), WEBHOOK_SECRET, int(time.time()))
            reader, writer = await asyncio.open_connection("127.0.0.1", side.port)
            head = (
                "POST /payments/stripe/webhook HTTP/1.1\r\nHost: paired\r\n"
                "Content-Type: application/json\r\nConnection: close\r\n"
                f"Stripe-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            writer.write(head.encode() + body)
            answer = await reader.read()
            writer.close()
            status_line = answer.split(b"\r\n", 1)[0]
            # Paid an order: an ignored or duplicate event would cost the server far less.
            if b" 200 " not in status_line or b'"outcome":"processed"' not in answer:
                raise RuntimeError(f"webhook answered {answer[:300]!r}")

        return request

    return [deliver(event) for event in events]


def _scan(side: Side, ticket: int) -> Request:
    """A gate's scan of the ticket's current code, with a new scan_id."""

    async def request() -> None:
        assert side.phones is not None
        now = time.time()
        body = {
            "code": side.phones.code(Presentation("fan", ticket), now, random.Random(ticket)),
            "gate": "Gate 1",
            "scan_id": secrets.token_hex(8),
            "scanned_at": datetime.fromtimestamp(now, UTC).isoformat(),
        }
        headers = {"Authorization": f"Bearer {side.scanner}"}
        await side.http.ok("POST", "/door/scans", headers, body)

    return request


def _listing_body(side: Side, holder: Holder) -> dict[str, Any]:
    return {
        "event_id": side.event_id,
        "token_id": holder.token_id,
        "price_wei": str(side.face_wei),
        "payout": holder.payout,
    }


def _sell_order(side: Side, index: int) -> Request:
    async def request() -> None:
        holder, client = side.holders[index]
        body = _listing_body(side, holder)
        answer = await side.http.ok("POST", "/listings/sell-order", client._auth(), body)
        side.typed[index] = answer["typed_data"]

    return request


def _listing(side: Side, index: int) -> Request:
    holder, client = side.holders[index]
    typed = side.typed[index]
    # Signed before the chunk starts: the wallet's work is not the server's.
    body = {
        **_listing_body(side, holder),
        "nonce": int(typed["message"]["nonce"]),
        "deadline": int(typed["message"]["deadline"]),
        "signature": _sign_typed(holder.wallet, typed),
    }
    return lambda: side.http.ok("POST", "/listings", client._auth(), body)


async def _seed_holders(sides: list[Side], chain: ChainClient, holders: int) -> None:
    """Each side's ticket holders, minted on the shared anvil and signed in (not measured)."""
    for side in sides:
        seeded = seed_holders(side.database_url, chain, side.event_id, holders)
        side.holders = [(holder, Buyer(side.http, holder.wallet, 1)) for holder in seeded]
        for _, client in side.holders:
            await client.sign_in()


# A request kind and the kind it needs done first, for the same buyer or ticket.
_NEEDS = {
    "join": "sign-in",
    "status": "join",
    "hold+checkout": "join",
    "confirm": "hold+checkout",
    "webhook": "confirm",
    "door refuse": "door admit",
    "listing": "sell-order",
}


async def _compare(sides: list[Side], buyers: int, chunk: int, kinds: list[str] | None,
                   chain: ChainClient) -> dict[str, dict[str, float]]:  # fmt: skip
    for side in sides:
        side.buyers = [Buyer(side.http, Account.create(), 2) for _ in range(buyers)]
        # The door's tickets, recorded as fulfilment does (not minted: nothing checks them in).
        seeded = _seed(side.database_url, None, side.event_id, buyers, random.Random(7))
        side.phones = Phones(side.secret, seeded)
    phases: dict[str, Callable[[Side], list[Request]]] = {
        "sign-in": lambda s: [b.sign_in for b in s.buyers],
        "join": lambda s: [_join(s, b) for b in s.buyers],
        "status": lambda s: [_status(s, b) for b in s.buyers],
        "livez": lambda s: [_livez(s) for _ in s.buyers],
        "hold+checkout": lambda s: [_hold_and_checkout(s, i, b) for i, b in enumerate(s.buyers)],
        "confirm": lambda s: [_confirm(s, i) for i in range(len(s.buyers))],
        "webhook": _webhooks,
        # A fan's first scan (admitted), then the same ticket again (refused: already used).
        "door admit": lambda s: [_scan(s, i) for i in range(len(s.buyers))],
        "door refuse": lambda s: [_scan(s, i) for i in range(len(s.buyers))],
        # A holder asks for the sell order to sign, then lists the ticket with its signature.
        "sell-order": lambda s: [_sell_order(s, i) for i in range(len(s.holders))],
        "listing": lambda s: [_listing(s, i) for i in range(len(s.holders))],
    }
    figures: dict[str, dict[str, float]] = {}
    wanted = set(phases if kinds is None else kinds)
    for kind in sorted(wanted):
        while kind in _NEEDS:  # what a kind of request needs done first is measured too
            kind = _NEEDS[kind]
            wanted.add(kind)
    if "sell-order" in wanted:
        await _seed_holders(sides, chain, buyers)
    for name, requests in phases.items():
        if name not in wanted:
            continue
        per_request = await _phase(sides, chunk, requests)
        a, b = per_request["A"], per_request["B"]
        figures[name] = {"A_ms": round(a, 3), "B_ms": round(b, 3), "B_over_A": round(b / a, 3)}
        print(f"{name:14s} A {a:6.2f} ms  B {b:6.2f} ms  B/A {b / a:5.3f}", flush=True)
    for side in sides:
        side.http.close()
    return figures


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="make bench-paired",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--base", default="HEAD", help="git revision of version A (default HEAD)")
    parser.add_argument("--buyers", type=int, default=200, help="requests per kind and side")
    parser.add_argument("--chunk", type=int, default=25, help="requests per side in a row")
    parser.add_argument(
        "--kinds",
        help="comma-separated request kinds to measure (default: all), with the kinds they "
        "need first (status needs join, join needs sign-in, ...)",
    )
    parser.add_argument(
        "--no-record", action="store_true", help="print only: leave the recorded results alone"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    revision = _git("rev-parse", "--short", args.base)
    # B is what this tree runs: its commit, and whether files other than results differ from it.
    changed = _git("status", "--porcelain", "--untracked-files=no", "--", ".", *NOT_CODE)
    tree = _git("rev-parse", "--short", "HEAD") + (" with uncommitted changes" if changed else "")
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="fairtix-paired-") as tmp:
        workdir = Path(tmp)
        tree_a = _worktree(revision, stack)
        devnet = stack.enter_context(Devnet(port=_free_port(), log_file=workdir / "anvil.log"))
        w3 = connect_rpc(devnet.rpc_url)
        factory = deploy_factory_if_needed(w3, devnet_account(0), workdir)["TicketFactory"]
        sides = [
            _start_side(name, tree, devnet.rpc_url, factory["address"], workdir, stack)
            for name, tree in (("A", tree_a), ("B", ROOT))
        ]
        time.sleep(2.5)  # the sale opens
        print(f"A = {revision}, B = {tree}; server CPU per request:", flush=True)
        kinds = None if args.kinds is None else args.kinds.split(",")
        chain = ChainClient(w3, devnet_account(0), factory_address=factory["address"])
        figures = asyncio.run(_compare(sides, args.buyers, args.chunk, kinds, chain))
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()}",
        "python": platform.python_version(),
        "A": revision,
        "B": tree,
        "requests_per_kind_and_side": args.buyers,
        "chunk": args.chunk,
        "server_cpu_ms_per_request": figures,
    }
    if not args.no_record:
        RESULTS_JSON.write_text(json.dumps(result, indent=2) + "\n")
        _write_section(result)
    return 0


def _write_section(result: dict[str, Any]) -> None:
    rows = [
        f"| {kind} | {f['A_ms']:.2f} | {f['B_ms']:.2f} | {f['B_over_A']:.3f} |"
        for kind, f in result["server_cpu_ms_per_request"].items()
    ]
    section = "\n".join(
        [
            SECTION_START,
            "## Paired comparison (`make bench-paired BASE=rev`, bench/paired.py)",
            "",
            f"{result['date']}; machine: {result['machine']}; Python {result['python']}. "
            f"A = {result['A']}, B = {result['B']}; "
            f"{result['requests_per_kind_and_side']} requests of each kind per side, sent to "
            f"the two servers (one uvicorn worker each) in alternating chunks of "
            f"{result['chunk']}; server CPU from /proc; load average "
            f"{result['load_average_before_after'][0]} before, "
            f"{result['load_average_before_after'][1]} after.",
            "",
            "| request | A ms CPU | B ms CPU | B/A |",
            "|---|---:|---:|---:|",
            *rows,
            SECTION_END,
        ]
    )
    replace_section(SECTION_START, SECTION_END, section, RESULTS_MD)


if __name__ == "__main__":
    raise SystemExit(main())
