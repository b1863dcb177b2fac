"""On-sale benchmark (``make bench-onsale``; never part of ``make test``).

N simulated buyers (default 2,000) go through the whole sale against real components: anvil (npm
``@foundry-rs/anvil``), PostgreSQL, Redis, the API on uvicorn with 2 workers, and ``fairtix worker``
as its own process. Before the sale every buyer signs in with Ethereum (SIWE), joins the
waiting room and polls it as told; the sale then opens (pre-sale shuffle, admission), and each
buyer, as soon as it is admitted, orders 1-4 tickets and starts the card checkout in the same
request (POST /orders with ``checkout``), and pays with 4242 in the sandbox. The worker
delivers the sandbox's signed webhooks to the API and mints the paid orders on anvil in batches.
Supply is 90% of what the buyers ask for, so the sale sells out and overselling is possible.

Measured: tickets fulfilled per second from the sale opening to the last token id recorded;
p50/p99 from a buyer's payment (the card confirmation answered) to its order's token ids being
recorded; and, read back from the chain's Transfer logs, oversold (tokens minted beyond supply)
and duplicates (a token or an order minted twice, or an order with the wrong number of tokens).

Writes bench/results/onsale.json and the on-sale section of bench/RESULTS.md.
Environment: FAIRTIX_BENCH_DATABASE_URL (default: a fresh ``fairtix_bench`` database on the local
PostgreSQL), FAIRTIX_REDIS_URL, BENCH_BUYERS (2000), BENCH_CONCURRENCY (buyers in flight, 200),
BENCH_SEED.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from sqlalchemy import func, select
from web3 import Web3

from backend import __version__
from backend.chain.client import connect_rpc
from backend.chain.deploy import deploy_factory_if_needed
from backend.chain.devnet import Devnet, devnet_account
from backend.db.engine import make_engine, make_session_factory, transaction
from backend.db.migrate import upgrade_to_head
from backend.demo import FairtixClient
from backend.sales.models import Order, OrderTransition
from bench.queue import _free_port, _read_response, _wait_live
from bench.results_md import bench_parser, figure_table, replace_section

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "bench" / "results" / "onsale.json"
RESULTS_MD = ROOT / "bench" / "RESULTS.md"
SECTION_START = "<!-- bench-onsale:start -->"
SECTION_END = "<!-- bench-onsale:end -->"
REDIS_URL = os.environ.get("FAIRTIX_REDIS_URL", "redis://127.0.0.1:6379/0")
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432"
SUCCESS_CARD = "4242424242424242"
PRICE_CENTS = 2500
TARGET_TICKETS_PER_S = 200


def _say(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def _fresh_database(name: str = "fairtix_bench") -> str:
    """A benchmark's own database, dropped and created again so every run starts empty.
    BENCH_DB_SUFFIX, if set, is appended to the name: runs from two checkouts at once then
    don't drop each other's database."""
    name += os.environ.get("BENCH_DB_SUFFIX", "")
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a database name: {name!r}")
    with psycopg.connect(f"{LOCAL_POSTGRES}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return f"{LOCAL_POSTGRES}/{name}"


# FairtixClient wants a client; building one per buyer (an SSL context each) took 80 ms.
_UNUSED_HTTP = httpx.Client()


class RawHttp:
    """A pool of keep-alive HTTP/1.1 connections on plain asyncio streams. httpx's async pool
    scans every queued request on each release: with 2,000 buyers waiting it spent more CPU than
    the server it was measuring."""

    def __init__(self, port: int, size: int) -> None:
        self._port = port
        self._size = size
        self._opened = 0
        # Requests sent, by method and route (ids folded): what each buyer cost the API.
        self.requests: Counter[str] = Counter()
        self._free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = (
            asyncio.Queue()
        )

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while True:
            if self._free.empty() and self._opened < self._size:
                self._opened += 1
                return await asyncio.open_connection("127.0.0.1", self._port)
            reader, writer, idle_since = await self._free.get()
            # uvicorn closes a keep-alive connection after 5 s idle: don't reuse one near that.
            if time.monotonic() - idle_since < 4:
                return reader, writer
            writer.close()
            self._opened -= 1

    async def call(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
    ) -> tuple[int, Any]:
        self.requests[method + " " + re.sub(r"/(\d+|pi_[^/]+)", "/{id}", path)] += 1
        payload = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", "Host: bench", f"Content-Length: {len(payload)}"]
        if body is not None:
            head.append("Content-Type: application/json")
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        request = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
        for attempt in range(2):
            reader, writer = await self._connection()
            try:
                writer.write(request)
                status, raw = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                writer.close()
                self._opened -= 1
                # Like any client: send again once, on a fresh connection, if the server closed
                # the connection without answering a byte.
                partial = getattr(exc, "partial", b"")
                if attempt or partial:
                    raise
                continue
            self._free.put_nowait((reader, writer, time.monotonic()))
            return status, json.loads(raw) if raw else None
        raise AssertionError("unreachable")

    async def ok(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
    ) -> Any:
        status, answer = await self.call(method, path, headers, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path} answered {status}: {answer}")
        return answer

    def close(self) -> None:
        while not self._free.empty():
            self._free.get_nowait()[1].close()


class Buyer:
    """One wallet going through the sale over HTTP; records when it paid."""

    def __init__(self, http: RawHttp, wallet: LocalAccount, quantity: int) -> None:
        self.http = http
        self.wallet = wallet
        self.quantity = quantity
        self.token = ""
        self.queue_token = ""
        self.poll_after = 0
        self.order_id: int | None = None
        self.paid_at: float | None = None  # unix time the card confirmation answered
        self.outcome = "not started"

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def sign_in(self) -> None:
        nonce = await self.http.ok("POST", "/auth/nonce")
        # FairtixClient only builds and signs the EIP-4361 text here; it sends nothing.
        signer = FairtixClient(_UNUSED_HTTP, self.wallet)
        text = signer.siwe_message(nonce)
        body = {"message": text, "signature": signer.personal_sign(text)}
        self.token = (await self.http.ok("POST", "/auth/verify", body=body))["token"]

    async def join(self, event_id: int) -> None:
        joined = await self.http.ok("POST", f"/events/{event_id}/queue", self._auth())
        self.queue_token = joined["token"]
        self.poll_after = joined["poll_after_seconds"] or 2

    async def buy(self, event_id: int, tier_id: int, rng: random.Random) -> None:
        # Poll as the web client does, from the join on: when the last answer's
        # poll_after_seconds says, plus up to a second of jitter so 2,000 tabs don't poll in
        # step. Before the sale that is at most a third of the grace period, so the waiting room
        # still counts every buyer as present when it opens.
        path = f"/events/{event_id}/queue/me"
        while True:
            await asyncio.sleep(self.poll_after + rng.random())
            status = await self.http.ok("GET", path, {"X-Queue-Token": self.queue_token})
            if status["state"] == "admitted":
                break
            self.poll_after = status["poll_after_seconds"] or 2
        # Hold and start the card payment in one request, as the web client does.
        body = {
            "event_id": event_id,
            "tier_id": tier_id,
            "quantity": self.quantity,
            "checkout": {"method": "card"},
        }
        code, placed = await self.http.call("POST", "/orders", self._auth(), body)
        if code == 409:
            self.outcome = str(placed.get("type", "")).rsplit("/", 1)[-1] or "409"
            return
        if code != 201 or placed["checkout"] is None:
            raise RuntimeError(f"POST /orders answered {code}: {placed}")
        self.order_id = int(placed["id"])
        intent = placed["checkout"]["payment_intent"]
        card = {"client_secret": intent["client_secret"], "card_number": SUCCESS_CARD}
        await self.http.ok("POST", f"/sandbox/payment_intents/{intent['id']}/confirm", body=card)
        self.paid_at = time.time()
        self.outcome = "paid"


async def _gather_limited(concurrency: int, jobs: list[Any]) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def run(job: Any) -> Any:
        async with gate:
            return await job

    return await asyncio.gather(*(run(job) for job in jobs), return_exceptions=True)


def _env(base: str, database_url: str, rpc_url: str, factory: str, prefix: str, organizer: str,
         workdir: Path) -> dict[str, str]:  # fmt: skip
    return {
        **os.environ,
        "FAIRTIX_ENV": "development",
        "FAIRTIX_DATABASE_URL": database_url,
        "FAIRTIX_RPC_URL": rpc_url,
        "FAIRTIX_FACTORY_ADDRESS": factory,
        "FAIRTIX_QUEUE_STORE": "redis",
        "FAIRTIX_REDIS_URL": REDIS_URL,
        "FAIRTIX_QUEUE_REDIS_PREFIX": prefix,
        "FAIRTIX_ADMIN_ADDRESSES": organizer,
        "FAIRTIX_SECRET_KEY": secrets.token_hex(32),
        "FAIRTIX_RUN_WORKER": "false",
        "FAIRTIX_PUBLIC_BASE_URL": base,
        "FAIRTIX_SIWE_DOMAIN": base.removeprefix("http://"),
        "FAIRTIX_SIWE_URI": base,
        "FAIRTIX_VAR_DIR": str(workdir / "var"),
        "FAIRTIX_LOG_LEVEL": "WARNING",
        # Every simulated fan comes from 127.0.0.1, one client address to the limits: budgets
        # no run can reach, so the limits are counted (their cost measured) but never refuse.
        "FAIRTIX_RATE_LIMIT_PER_CLIENT": "100000000/minute",
        "FAIRTIX_RATE_LIMIT_SIGN_IN": "100000000/minute",
    }


def run_sale(buyers_count: int, concurrency: int, seed: int, database_url: str,
             workdir: Path) -> dict[str, Any]:  # fmt: skip
    rng = random.Random(seed)
    quantities = [rng.randint(1, 4) for _ in range(buyers_count)]
    supply = int(sum(quantities) * 0.9)
    organizer = Account.create()
    prefix = f"fairtix-onsale-{secrets.token_hex(4)}"
    processes: list[subprocess.Popen[bytes]] = []
    logs = []
    with Devnet(port=_free_port(), log_file=workdir / "anvil.log") as devnet:
        w3 = connect_rpc(devnet.rpc_url)
        factory = deploy_factory_if_needed(w3, devnet_account(0), workdir)["TicketFactory"][
            "address"
        ]
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        env = _env(base, database_url, devnet.rpc_url, factory, prefix, organizer.address, workdir)
        try:
            api_log = (workdir / "api.log").open("wb")
            logs.append(api_log)
            api = subprocess.Popen(
                [sys.executable, "-m", "bench.queue", "serve", str(port)],
                cwd=ROOT, env=env, stdout=api_log, stderr=api_log,
            )  # fmt: skip
            processes.append(api)
            _wait_live(port, api, workdir / "api.log")
            _say(f"API up on {base} (2 workers); anvil on {devnet.rpc_url}")
            with httpx.Client(base_url=base, timeout=120) as http:
                org = FairtixClient(http, organizer)
                org.sign_in()
                # Time for every buyer to sign in and join before the sale opens.
                sale_opens = datetime.now(UTC) + timedelta(seconds=max(60, buyers_count * 0.04))
                event = org.create_event(
                    "fairtix on-sale bench",
                    [{"name": "General Admission", "price_cents": PRICE_CENTS, "supply": supply}],
                    sale_opens_at=sale_opens.isoformat(),
                    queue_opens_at=datetime.now(UTC).isoformat(),
                    max_admitted=1000,
                    admissions_per_minute=1_000_000,
                    max_tickets_per_order=4,
                )
            event_id, tier_id = int(event["id"]), int(event["tiers"][0]["id"])
            _say(f"event {event_id} on {event['contract_address']}: {supply} seats")
            worker_log = (workdir / "worker.log").open("wb")
            logs.append(worker_log)
            worker = subprocess.Popen(
                [sys.executable, "-m", "backend.cli", "worker"],
                cwd=ROOT, env=env, stdout=worker_log, stderr=worker_log,
            )  # fmt: skip
            processes.append(worker)
            roles = {"api": api.pid, "worker": worker.pid}
            cpu_before = _cpu_by_role(roles)
            cpu_at_opening: dict[str, float] = {}
            try:
                sale = asyncio.run(
                    _drive(base, event_id, tier_id, quantities, concurrency, sale_opens, rng,
                           lambda: cpu_at_opening.update(_cpu_by_role(roles)))
                )  # fmt: skip
            except RuntimeError:
                # The logs live in a temporary directory: show their ends before it goes.
                for name in ("api.log", "worker.log"):
                    tail = (workdir / name).read_text(errors="replace").splitlines()[-30:]
                    _say(f"last lines of {name}:\n" + "\n".join(tail))
                raise
            cpu_at_last_token: dict[str, float] = {}
            result = _measure(database_url, w3, event, supply, sale, worker,
                              lambda: cpu_at_last_token.update(_cpu_by_role(roles)))  # fmt: skip
            used = _cpu_by_role(roles)
            # From before the buyers signed in to the last token: where the two cores went.
            result["cpu_seconds"] = {k: round(used[k] - cpu_before[k], 1) for k in used}
            # From the opening to the last token, per paid order: the figure a change to the
            # order path moves. Unlike tickets/s it barely depends on what else the machine
            # runs, so two versions can be compared with a few runs each.
            in_sale = {k: cpu_at_last_token[k] - cpu_at_opening[k] for k in used}
            orders = max(result["orders_paid"], 1)
            result["sale_cpu_ms_per_order"] = {
                **{k: round(v * 1000 / orders, 1) for k, v in in_sale.items()},
                "total": round(sum(in_sale.values()) * 1000 / orders, 1),
            }
            return result
        finally:
            for process in reversed(processes):
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
            for handle in logs:
                handle.close()
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and, recursively, its children (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    return total + sum(_process_cpu(int(child)) for child in children)


def _cpu_by_role(roles: dict[str, int]) -> dict[str, float]:
    by_name: dict[str, float] = {"postgres": 0.0, "anvil": 0.0, "redis-server": 0.0}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if name in by_name:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            by_name[name] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    load = os.times()
    return {
        **{role: _process_cpu(pid) for role, pid in roles.items()},
        **by_name,
        "load generator": load.user + load.system,
    }


async def _drive(base: str, event_id: int, tier_id: int, quantities: list[int], concurrency: int,
                 sale_opens: datetime, rng: random.Random,
                 at_opening: Callable[[], None]) -> dict[str, Any]:  # fmt: skip
    http = RawHttp(int(base.rsplit(":", 1)[1]), concurrency)
    try:
        buyers = [Buyer(http, Account.create(), quantity) for quantity in quantities]
        started = time.monotonic()
        failures = [
            f for f in await _gather_limited(concurrency, [b.sign_in() for b in buyers]) if f
        ]
        failures += [
            f for f in await _gather_limited(concurrency, [b.join(event_id) for b in buyers]) if f
        ]
        if failures:
            raise RuntimeError(f"{len(failures)} buyers failed to sign in or join: {failures[0]!r}")
        _say(f"{len(buyers)} buyers signed in and queued in {time.monotonic() - started:.1f} s")
        if datetime.now(UTC) >= sale_opens:
            raise RuntimeError("buyers were still joining when the sale opened; lower BENCH_BUYERS")

        async def announce_opening() -> None:
            await asyncio.sleep((sale_opens - datetime.now(UTC)).total_seconds())
            at_opening()
            _say("sale open")
            _say(f"requests before opening: {dict(http.requests)}")

        opening = asyncio.ensure_future(announce_opening())
        buying = [
            asyncio.ensure_future(b.buy(event_id, tier_id, random.Random(rng.random())))
            for b in buyers
        ]
        errors = await _errors_unless_too_many(buying, max(10, len(buyers) // 100))
        await opening
        _say(f"every buyer done after {(datetime.now(UTC) - sale_opens).total_seconds():.1f} s")
    finally:
        http.close()
    return {
        "buyers": buyers,
        "sale_opens": sale_opens.timestamp(),
        "client_errors": errors,
        "requests": dict(sorted(http.requests.items())),
    }


async def _errors_unless_too_many(buying: Sequence[asyncio.Future[None]], limit: int) -> list[str]:
    """The buyers' errors once all are done; stops the sale at ``limit`` errors. A broken
    server fails every buyer it answers, and the admitted ones never finish: the rest then
    wait for their admissions to lapse, and the run hung for as long as that took."""
    errors: list[str] = []
    for finished in asyncio.as_completed(buying):
        try:
            await finished
        except Exception as exc:  # a buyer's failure is a result to report, not a crash
            errors.append(repr(exc)[:300])
            if len(errors) >= limit:
                for task in buying:
                    task.cancel()
                raise RuntimeError(
                    f"sale stopped: {len(errors)} buyers failed, the first with {errors[0]}"
                ) from exc
    return errors


TRANSFER_TOPIC = "0x" + Web3.keccak(text="Transfer(address,address,uint256)").hex().removeprefix(
    "0x"
)


def _minted_on_chain(w3: Web3, contract: str, from_block: int) -> list[tuple[int, str]]:
    """(token id, tx hash) of every Transfer from the zero address: what the chain issued."""
    zero = "0x" + "00" * 32
    logs = w3.eth.get_logs(
        {
            "address": Web3.to_checksum_address(contract),
            "fromBlock": from_block,
            "toBlock": "latest",
            "topics": [TRANSFER_TOPIC, zero],
        }
    )
    return [
        (int.from_bytes(bytes(log["topics"][3]), "big"), log["transactionHash"].hex())
        for log in logs
    ]


def _measure(database_url: str, w3: Web3, event: dict[str, Any], supply: int,
             sale: dict[str, Any], worker: subprocess.Popen[bytes],
             at_last_token: Callable[[], None]) -> dict[str, Any]:  # fmt: skip
    buyers: list[Buyer] = sale["buyers"]
    paid = {b.order_id: b for b in buyers if b.outcome == "paid" and b.order_id is not None}
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    deadline = time.monotonic() + 600
    while True:
        with transaction(sessions) as session:
            statuses = Counter(
                session.scalars(select(Order.status).where(Order.id.in_(list(paid))))
            )
        if statuses.get("fulfilled", 0) == len(paid) or time.monotonic() > deadline:
            break
        if worker.poll() is not None:
            raise RuntimeError("the worker exited; see worker.log")
        time.sleep(0.2)
    at_last_token()
    with transaction(sessions) as session:
        fulfilled_at = dict(
            session.execute(
                select(OrderTransition.order_id, func.max(OrderTransition.at))
                .where(
                    OrderTransition.order_id.in_(list(paid)),
                    OrderTransition.to_status == "fulfilled",
                )
                .group_by(OrderTransition.order_id)
            ).all()
        )
        fulfilled_twice = session.scalar(
            select(func.count()).select_from(
                select(OrderTransition.order_id)
                .where(OrderTransition.to_status == "fulfilled")
                .group_by(OrderTransition.order_id)
                .having(func.count() > 1)
                .subquery()
            )
        )
    engine.dispose()
    opened = float(sale["sale_opens"])
    latencies = sorted(
        fulfilled_at[order_id].timestamp() - buyer.paid_at
        for order_id, buyer in paid.items()
        if order_id in fulfilled_at and buyer.paid_at is not None
    )
    tickets = sum(paid[order_id].quantity for order_id in fulfilled_at)
    last = max(at.timestamp() for at in fulfilled_at.values())
    minted = _minted_on_chain(w3, event["contract_address"], 0)  # a fresh anvil per run
    token_ids = Counter(token for token, _tx in minted)
    per_order = Counter(token // 256 for token in token_ids)
    # A fulfilled order must hold exactly its quantity on chain; no other order may hold any.
    wrong_count = sum(
        per_order.get(order_id, 0) != paid[order_id].quantity for order_id in fulfilled_at
    ) + sum(1 for order_id in per_order if order_id not in fulfilled_at)
    mint_txs = {tx for _token, tx in minted}
    gas = sum(int(w3.eth.get_transaction_receipt(HexStr(tx))["gasUsed"]) for tx in mint_txs)
    outcomes = Counter(b.outcome for b in buyers)
    return {
        "buyers": len(buyers),
        "tickets_requested": sum(b.quantity for b in buyers),
        "supply": supply,
        "orders_paid": len(paid),
        "orders_fulfilled": len(fulfilled_at),
        "tickets_fulfilled": tickets,
        "tickets_per_s": round(tickets / (last - opened), 1),
        "seconds_sale_open_to_last_token": round(last - opened, 2),
        "p50_payment_to_token_s": round(latencies[len(latencies) // 2], 3),
        "p99_payment_to_token_s": round(latencies[int(len(latencies) * 0.99)], 3),
        "mean_payment_to_token_s": round(statistics.fmean(latencies), 3),
        "minted_on_chain": len(minted),
        "paid_not_fulfilled": len(paid) - len(fulfilled_at),
        "oversold": max(0, len(token_ids) - supply),
        "duplicates": sum(n - 1 for n in token_ids.values())
        + wrong_count
        + int(fulfilled_twice or 0),
        "mint_transactions": len(mint_txs),
        "mean_tickets_per_mint_tx": round(len(minted) / max(len(mint_txs), 1), 1),
        "mint_gas_per_ticket": round(gas / max(len(minted), 1)),
        "buyer_outcomes": dict(outcomes),
        "client_errors": sale["client_errors"][:5],
        "client_error_count": len(sale["client_errors"]),
        "requests": sale["requests"],
    }


def _write(result: dict[str, Any]) -> None:
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_JSON.write_text(json.dumps(result, indent=2) + "\n")
    v = result["versions"]
    met = result["tickets_per_s"] >= TARGET_TICKETS_PER_S
    r = result
    verdict = "met" if met else "missed"
    outcomes = ", ".join(f"{k} {n:,}" for k, n in sorted(r["buyer_outcomes"].items()))
    mints = (
        f"{r['mint_transactions']} ({r['mean_tickets_per_mint_tx']} tickets each on average, "
        f"{r['mint_gas_per_ticket']:,} gas per ticket)"
    )
    cpu = ", ".join(f"{role} {seconds}" for role, seconds in r.get("cpu_seconds", {}).items())
    per_order = ", ".join(f"{role} {ms}" for role, ms in r.get("sale_cpu_ms_per_order", {}).items())
    rows = [
        ("buyers", f"{r['buyers']:,} (asking for {r['tickets_requested']:,} tickets)"),
        ("supply", f"{r['supply']:,}"),
        ("orders paid / fulfilled", f"{r['orders_paid']:,} / {r['orders_fulfilled']:,}"),
        ("tickets fulfilled", f"{r['tickets_fulfilled']:,}"),
        ("sale open to last token id", f"{r['seconds_sale_open_to_last_token']} s"),
        (
            "**tickets per second**",
            f"**{r['tickets_per_s']}** (target >= {TARGET_TICKETS_PER_S}: {verdict})",
        ),
        (
            "payment to token id, p50 / p99",
            f"{r['p50_payment_to_token_s']} s / {r['p99_payment_to_token_s']} s",
        ),
        ("oversold / duplicates", f"{r['oversold']} / {r['duplicates']}"),
        ("mint transactions", mints),
        ("buyer outcomes", outcomes),
        ("CPU seconds, sign-in to last token", cpu),
        ("CPU ms per paid order, opening to last token", per_order),
        ("requests sent", ", ".join(f"{k} {n:,}" for k, n in r["requests"].items())),
    ]
    section = "\n".join(
        [
            SECTION_START,
            "## On-sale, end to end (`make bench-onsale`, bench/onsale.py)",
            "",
            f"{result['date']}; machine: {result['machine']}; Python {v['python']}, fairtix "
            f"{v['fairtix']}, web3 {v['web3']}, anvil (npm @foundry-rs/anvil); PostgreSQL, Redis; "
            f"load average {result['load_average_before_after'][0]} before, "
            f"{result['load_average_before_after'][1]} after.",
            "",
            "Every component real and on this machine: anvil, PostgreSQL, Redis, the API on "
            "uvicorn with 2 workers, `fairtix worker` as its own process, and the load generator "
            "(one asyncio process). Buyers sign in (SIWE) and join before the sale, then poll "
            "the waiting room when `poll_after_seconds` says (before the opening too, as a web "
            "client does, so none is set aside as away) until admitted, orders 1-4 tickets with "
            "the card checkout started in the same request, and pays in the card sandbox. "
            "Payment to token id runs from the card "
            "confirmation answering to the order's token ids being recorded. Oversold and "
            "duplicates are counted from the chain's Transfer logs.",
            "",
            *figure_table(rows),
            SECTION_END,
        ]
    )
    replace_section(SECTION_START, SECTION_END, section, RESULTS_MD)


def main() -> int:
    parser = bench_parser("make bench-onsale", __doc__)
    parser.add_argument("--buyers", type=int, default=int(os.environ.get("BENCH_BUYERS", "2000")))
    parser.add_argument(
        "--concurrency",
        type=int,
        default=int(os.environ.get("BENCH_CONCURRENCY", "200")),
        help="HTTP connections the buyers share (default 200)",
    )
    parser.add_argument("--seed", type=int, default=int(os.environ.get("BENCH_SEED", "7")))
    args = parser.parse_args()
    database_url = os.environ.get("FAIRTIX_BENCH_DATABASE_URL") or _fresh_database()
    engine = make_engine(database_url)
    upgrade_to_head(engine)  # before the API workers start, so they don't race to migrate
    engine.dispose()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="fairtix-onsale-") as tmp:
        result = run_sale(args.buyers, args.concurrency, args.seed, database_url, Path(tmp))
    import web3

    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()}",
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        **result,
        "target_tickets_per_s": TARGET_TICKETS_PER_S,
        "versions": {
            "fairtix": __version__,
            "python": platform.python_version(),
            "web3": web3.__version__,
        },
    }
    _write(result)
    print(json.dumps(result, indent=2))
    return 0 if result["oversold"] == 0 and result["duplicates"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
