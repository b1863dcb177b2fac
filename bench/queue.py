"""Waiting-room benchmark (``make bench-queue``; never part of ``make test``).

Part 1, HTTP: one uvicorn with 2 workers and the Redis store. A closed-loop load generator (raw
HTTP/1.1 keep-alive connections on asyncio, so the client costs little next to the server) drives,
in turn: the bare constant endpoint ``GET /livez``, joins (``POST /events/{id}/queue``, each by a
new signed-in wallet), and status polls (``GET /events/{id}/queue/me`` with the queue token, as a
refreshed tab or another replica would ask). Requests per second and p50/p99 latency of each.

Part 2, store: 100,000 simulated users through the Redis store API directly: most arrive before
the sale (shuffled at the start), the rest after (first come first served) while admission runs
in rounds; every admitted user buys (finish). Counts lost places (joined but never admitted),
duplicated ones (a seq or an admission given twice) and admissions out of the expected order.

Writes bench/results/queue.json and the queue section of bench/RESULTS.md.
Environment: FAIRTIX_BENCH_DATABASE_URL (default: SQLite in a temp dir), FAIRTIX_REDIS_URL,
BENCH_SECONDS (per HTTP phase, default 10), BENCH_ROUNDS (turns the phases take, default 5),
BENCH_CONCURRENCY (default 8), BENCH_USERS, BENCH_NO_RECORD=1 (print only),
BENCH_STOCK_UVICORN=1 (plain ``uvicorn --workers 2``; see :func:`serve` for the difference).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import insert

from backend import __version__
from backend.auth.models import AuthSession
from backend.auth.session_cache import RedisSessionCache
from backend.db.base import utcnow
from backend.db.engine import make_engine, make_session_factory, transaction
from backend.db.migrate import upgrade_to_head
from backend.queue import service, shuffle
from backend.queue.redis_store import RedisQueueStores
from backend.queue.store import ADMITTED, DONE, QueueConfig
from bench.results_md import replace_section
from tests.helpers import insert_event

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "bench" / "results" / "queue.json"
RESULTS_MD = ROOT / "bench" / "RESULTS.md"
SECTION_START = "<!-- bench-queue:start -->"
SECTION_END = "<!-- bench-queue:end -->"
SECRET = "bench-queue-secret"

SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))  # each phase's time, split into turns
STATUS_WALLETS = 2000
USERS = int(os.environ.get("BENCH_USERS", "100000"))
# BENCH_STOCK_UVICORN=1: plain `uvicorn --workers 2`, to see the cost of uvicorn issue #3149.
STOCK_UVICORN = os.environ.get("BENCH_STOCK_UVICORN") == "1"
REDIS_URL = os.environ.get("FAIRTIX_REDIS_URL", "redis://127.0.0.1:6379/0")
# BENCH_NO_RECORD=1: print only, leave bench/results/queue.json and bench/RESULTS.md alone.
NO_RECORD = os.environ.get("BENCH_NO_RECORD") == "1"
# Issue 22's targets.
TARGET_STATUS_VS_BARE = 0.7
TARGET_JOIN_VS_BARE = 0.5
TARGET_P99_MS = 20
TARGET_TEXT = {
    "status_rate": f"status >= {TARGET_STATUS_VS_BARE}x bare",
    "join_rate": f"join >= {TARGET_JOIN_VS_BARE}x bare",
    "status_p99": f"status p99 < {TARGET_P99_MS} ms",
    "join_p99": f"join p99 < {TARGET_P99_MS} ms",
    "no_lost_or_duplicated": "0 lost or duplicated",
}


# -- part 1: HTTP -----------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    statuses: Counter[int]
    server_cpu_seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            # CPU the two workers spent per request: unlike req/s, not skewed by other jobs.
            "server_cpu_ms_per_request": round(self.server_cpu_seconds * 1000 / self.requests, 3),
            "rps": round(self.requests / self.seconds, 1),
            "p50_ms": round(ordered[len(ordered) // 2] * 1000, 2),
            "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 2),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
            "requests": self.requests,
            "non_2xx": sum(n for status, n in self.statuses.items() if status >= 300),
        }


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


async def _drive(
    port: int, make_request: Callable[[int], bytes], seconds: float, concurrency: int
) -> Phase:
    counter = itertools.count()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    stop_at = time.perf_counter() + seconds

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop_at:
                request = make_request(next(counter))
                started = time.perf_counter()
                writer.write(request)
                status, _body = await _read_response(reader)
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return Phase("", len(latencies), time.perf_counter() - began, latencies, statuses)


def _request(method: str, path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: bench", "Content-Length: 0"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _cpu_seconds(master: int) -> float:
    """User + system CPU of the uvicorn master's worker processes (Linux /proc)."""
    total = 0.0
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        for pid in children:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0
    return total


def _merged(name: str, phases: list[Phase]) -> Phase:
    merged = Phase(name, 0, 0.0, [], Counter())
    for phase in phases:
        merged.requests += phase.requests
        merged.seconds += phase.seconds
        merged.latencies += phase.latencies
        merged.statuses += phase.statuses
        merged.server_cpu_seconds += phase.server_cpu_seconds
    return merged


def _measured(master: int, phase: Callable[[], Phase]) -> Phase:
    before = _cpu_seconds(master)
    result = phase()
    result.server_cpu_seconds = _cpu_seconds(master) - before
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare_database(url: str, wallets: list[str], prefix: str) -> tuple[int, list[str]]:
    engine = make_engine(url)
    upgrade_to_head(engine)  # before the workers start, so they don't race to migrate
    sessions = make_session_factory(engine)
    tokens = ["ftx_" + secrets.token_urlsafe(32) for _ in wallets]
    with transaction(sessions) as session:
        # The tests' factory for an event row without a contract: kept in step with the models.
        event = insert_event(
            session, sale_opens_at=utcnow() - timedelta(minutes=1), max_admitted=1000, supply=10**6
        )
        event.admissions_per_minute = 600
        event_id = event.id
        # Signed-in wallets, stored as POST /auth/verify stores them (SIWE is not under test).
        session.execute(
            insert(AuthSession),
            [
                {
                    "token_hash": hashlib.sha256(token.encode()).hexdigest(),
                    "address": wallet,
                    "created_at": utcnow(),
                    "expires_at": utcnow() + timedelta(hours=2),
                }
                for wallet, token in zip(wallets, tokens, strict=True)
            ],
        )
    # ... and written through to Redis after the commit, as POST /auth/verify does.
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    with client.pipeline(transaction=False) as pipe:
        cache = RedisSessionCache(pipe, prefix)
        for wallet, token in zip(wallets, tokens, strict=True):
            cache.remember(token, wallet, utcnow() + timedelta(hours=2))
        pipe.execute()
    client.close()
    engine.dispose()
    return event_id, tokens


def http_bench(database_url: str, prefix: str, workdir: Path) -> dict[str, Any]:
    wallets = [f"0x{n:040x}" for n in range(0x100000, 0x100000 + 60_000)]
    event_id, bearer_tokens = _prepare_database(database_url, wallets, prefix)
    port = _free_port()
    env = {
        **os.environ,
        "FAIRTIX_ENV": "test",
        "FAIRTIX_DATABASE_URL": database_url,
        "FAIRTIX_QUEUE_STORE": "redis",
        "FAIRTIX_REDIS_URL": REDIS_URL,
        "FAIRTIX_QUEUE_REDIS_PREFIX": prefix,
        "FAIRTIX_CHAIN_BACKEND": "eth-tester",
        "FAIRTIX_SECRET_KEY": SECRET,
        "FAIRTIX_RUN_WORKER": "false",
        "FAIRTIX_VAR_DIR": str(workdir / "var"),
        "FAIRTIX_LOG_LEVEL": "WARNING",
        # Every simulated fan comes from 127.0.0.1, one client address to the limits: budgets
        # no run can reach, so the limits are counted (their cost measured) but never refuse.
        "FAIRTIX_RATE_LIMIT_PER_CLIENT": "100000000/minute",
        "FAIRTIX_RATE_LIMIT_SIGN_IN": "100000000/minute",
    }
    command = [sys.executable, "-m", "bench.queue", "serve", str(port)]
    if STOCK_UVICORN:
        command = [
            sys.executable, "-m", "uvicorn", "backend.app:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
    log = (workdir / "server.log").open("wb")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        _wait_live(port, server, workdir / "server.log")
        # Queue tokens for the status phase: the first 2,000 wallets take places up front; the
        # join phase then only ever sees wallets that have never joined.
        joined: list[str] = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for token in bearer_tokens[:STATUS_WALLETS]:
                response = client.post(
                    f"/events/{event_id}/queue", headers={"Authorization": f"Bearer {token}"}
                )
                if response.status_code != 200:
                    raise SystemExit(
                        f"a join was refused: {response.status_code} {response.text}\n"
                        f"server log:\n{(workdir / 'server.log').read_text()[-3000:]}"
                    )
                joined.append(response.json()["token"])
        fresh_wallets = itertools.count(STATUS_WALLETS)

        def join_request(n: int) -> bytes:
            token = bearer_tokens[next(fresh_wallets) % len(bearer_tokens)]
            return _request(
                "POST", f"/events/{event_id}/queue", {"Authorization": f"Bearer {token}"}
            )

        def status_request(n: int) -> bytes:
            token = joined[n % len(joined)]
            return _request("GET", f"/events/{event_id}/queue/me", {"X-Queue-Token": token})

        bare = _request("GET", "/livez")
        requests: dict[str, Callable[[int], bytes]] = {
            "bare": lambda n: bare,
            "join": join_request,
            "status": status_request,
        }
        asyncio.run(_drive(port, lambda n: bare, 2, CONCURRENCY))  # warm-up: imports, pools
        # The phases take turns in short rounds rather than one long run each, so a burst of
        # other work on the machine lands on all three alike and the ratios stay fair.
        rounds: dict[str, list[Phase]] = {name: [] for name in requests}
        for _ in range(ROUNDS):
            for name, make_request in requests.items():
                rounds[name].append(
                    _measured(
                        server.pid,
                        lambda make=make_request: asyncio.run(  # type: ignore[misc]
                            _drive(port, make, SECONDS / ROUNDS, CONCURRENCY)
                        ),
                    )
                )
        if next(fresh_wallets) > len(bearer_tokens):
            print("note: more joins than wallets; later joins were repeats", file=sys.stderr)
        return {name: _merged(name, phases).summary() for name, phases in rounds.items()}
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def serve(port: int, workers: int = 2) -> None:
    """uvicorn with 2 worker processes, exactly as ``uvicorn --workers 2`` runs them, except for
    the listening socket: uvicorn's own leaves ``proto`` at 0, so asyncio never sets TCP_NODELAY
    on accepted connections and every keep-alive response waits ~40 ms for a delayed ACK
    (uvicorn issue #3149, open). Bound here with IPPROTO_TCP, the workers get TCP_NODELAY."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "backend.app:create_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        # A worker still starting (or a busy one) on a loaded machine misses uvicorn's default
        # 5 s health check, is killed and started again, and the benchmark never begins.
        timeout_worker_healthcheck=120,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.set_inheritable(True)
    Multiprocess(config, sockets=[sock]).run()


def _wait_live(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/livez", timeout=2).status_code == 200:
                # Both workers: each builds its own chain; give the second a moment too.
                time.sleep(3)
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server did not come up: {log.read_text()[-3000:]}")


# -- part 2: 100,000 simulated users on the store ------------------------------------------------


def simulate(users: int, prefix: str) -> dict[str, Any]:
    stores = RedisQueueStores(REDIS_URL, prefix)
    t0 = datetime(2030, 1, 1, 12, tzinfo=UTC)
    config = QueueConfig(
        event_id=1,
        queue_opens_at=t0 - timedelta(hours=1),
        sale_opens_at=t0,
        closes_at=t0 + timedelta(days=1),
        max_admitted=2000,
        admissions_per_minute=120_000,  # 2,000 a second: one round of the loop below
        admission_ttl=timedelta(minutes=10),
        grace=timedelta(days=1),  # the simulated users never leave
    )
    store = stores.store
    early = [f"0x{n:040x}" for n in range(1, int(users * 0.6) + 1)]
    late = [f"0x{n:040x}" for n in range(len(early) + 1, users + 1)]
    seq_of: dict[str, int] = {}
    started = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=8)

    def join_all(wallets: list[str], now: datetime) -> None:
        for place in pool.map(lambda w: store.join(config, w, now, None), wallets):
            seq_of[place.wallet] = place.seq

    join_all(early, t0 - timedelta(minutes=5))
    joined_at = time.perf_counter()

    shuffle_began = time.perf_counter()
    first = service.advance(store, config, t0)
    shuffle_seconds = time.perf_counter() - shuffle_began
    record = store.shuffle_record(config.event_id)
    assert record is not None
    shuffle_verified = record.order == shuffle.shuffled(record.seed, early)

    expected = list(record.order)  # then the late arrivals, by seq, as they come
    admitted_order: list[str] = []
    pending_late = list(late)
    now = t0
    admitted_now = first.admitted
    rounds = 0
    out_of_order = 0
    while admitted_now or pending_late or len(admitted_order) < len(expected):
        rounds += 1
        batch = expected[len(admitted_order) : len(admitted_order) + admitted_now]
        states = list(pool.map(lambda w, at=now: store.place(config, w, at, touch=False), batch))
        out_of_order += sum(1 for p in states if p is None or p.state != ADMITTED)
        admitted_order += batch
        list(pool.map(lambda w, at=now: store.finish(config.event_id, w, at), batch))
        if pending_late:  # newcomers keep arriving while the queue drains
            arriving, pending_late = pending_late[:1500], pending_late[1500:]
            join_all(arriving, now)
            expected += sorted(arriving, key=seq_of.__getitem__)
        now += timedelta(seconds=1)
        admitted_now = service.advance(store, config, now).admitted
        if rounds > 10_000:  # a bug would loop for ever: stop and let the counts show it
            break
    finished = time.perf_counter()

    finals = list(pool.map(lambda w: store.place(config, w, now, touch=False), early + late))
    pool.shutdown()
    lost = sum(1 for p in finals if p is None or p.state != DONE)
    seqs = [p.seq for p in finals if p is not None]
    duplicated = (len(seqs) - len(set(seqs))) + (len(admitted_order) - len(set(admitted_order)))
    stats = store.stats(config, now)
    stores.store.forget(config.event_id)
    stores.close()
    return {
        "simulated_users": users,
        "presale_users": len(early),
        "lost": lost,
        "duplicated": duplicated,
        "admitted_out_of_order": out_of_order,
        "seq_gap_free": sorted(seqs) == list(range(1, users + 1)),
        "shuffle_verified": shuffle_verified,
        "shuffle_seconds": round(shuffle_seconds, 2),
        "admission_rounds": rounds,
        "done_count": stats.done,
        "join_seconds_presale": round(joined_at - started, 2),
        "simulation_seconds": round(finished - started, 2),
    }


# -- report -------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    info = redis.Redis.from_url(REDIS_URL).info("server")
    import fastapi
    import uvicorn

    return {
        "fairtix": __version__,
        "python": platform.python_version(),
        "fastapi": fastapi.__version__,
        "uvicorn": uvicorn.__version__,
        "redis_py": redis.__version__,
        "redis_server": str(info.get("redis_version")),
    }


def write_report(result: dict[str, Any]) -> None:
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_JSON.write_text(json.dumps(result, indent=2) + "\n")
    http = result["http"]
    bare = result["bare_rps"]
    rows = [
        f"| {name} | {http[name]['rps']:,.0f} | {http[name]['rps'] / bare:.2f}x | "
        f"{http[name]['p50_ms']} | {http[name]['p99_ms']} | "
        f"{http[name]['server_cpu_ms_per_request']} | {http[name]['non_2xx']} |"
        for name in ("bare", "join", "status")
    ]
    v = result["versions"]
    section = "\n".join(
        [
            SECTION_START,
            "## Waiting room (`make bench-queue`, bench/queue.py)",
            "",
            f"{result['date']}; machine: {result['machine']}; Python {v['python']}, "
            f"FastAPI {v['fastapi']}, uvicorn {v['uvicorn']}, redis-py {v['redis_py']}, "
            f"Redis {v['redis_server']}; database {result['database']}; load average "
            f"{result['load_average_before_after'][0]} before, "
            f"{result['load_average_before_after'][1]} after (other jobs shared the machine).",
            "",
            f"HTTP: {result['server']}, Redis store; closed loop, {result['concurrency']} "
            f"keep-alive connections, {result['seconds_per_phase']:.0f} s per phase in "
            f"{result['rounds']} interleaved turns, client on the "
            "same machine. bare = `GET /livez` (constant); join = `POST /events/{id}/queue` by a "
            "new signed-in wallet each time (bearer session from its Redis copy, no database); "
            "status = `GET /events/{id}/queue/me` with the queue token (no database).",
            "",
            "| endpoint | req/s | vs bare | p50 ms | p99 ms | server CPU ms/req | non-2xx |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"Store: {result['simulated_users']:,} simulated users on Redis through the store API "
            f"({result['simulation']['presale_users']:,} before the sale, shuffled; the rest "
            "first come first served, arriving while admission runs in rounds of up to 2,000): "
            f"lost {result['lost']}, duplicated {result['duplicated']}, admitted out of order "
            f"{result['simulation']['admitted_out_of_order']}, shuffle recomputed from the "
            f"published seed: {result['simulation']['shuffle_verified']}, "
            f"{result['simulation']['simulation_seconds']} s.",
            "",
            f"Targets: status >= {TARGET_STATUS_VS_BARE}x bare, join >= {TARGET_JOIN_VS_BARE}x "
            f"bare, p99 < {TARGET_P99_MS} ms for both: {result['targets']}.",
            SECTION_END,
        ]
    )
    replace_section(SECTION_START, SECTION_END, section, RESULTS_MD)


def main() -> int:
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(__doc__)
        print("Run: make bench-queue (or: python -m bench.queue). The scale-out setup the issue")
        print("names: FAIRTIX_BENCH_DATABASE_URL=postgresql://... make bench-queue")
        return 0
    if sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]))
        return 0
    load_before = os.getloadavg()
    database_url = os.environ.get("FAIRTIX_BENCH_DATABASE_URL", "")
    prefix = f"fairtix-bench-{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="fairtix-bench-") as tmp:
        workdir = Path(tmp)
        url = database_url or f"sqlite:///{workdir / 'bench.db'}"
        print(f"HTTP phases on {url.split('@')[-1]} ...", file=sys.stderr)
        http = http_bench(url, prefix, workdir)
    client = redis.Redis.from_url(REDIS_URL)
    stale = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if stale:
        client.delete(*stale)
    print(f"simulating {USERS:,} users on the Redis store ...", file=sys.stderr)
    simulation = simulate(USERS, prefix + "-sim")
    bare = http["bare"]["rps"]
    join, status = http["join"], http["status"]
    # A rate counts only if every answer was a success: a quick error is no answer.
    met = {
        "join_rate": join["rps"] >= TARGET_JOIN_VS_BARE * bare and join["non_2xx"] == 0,
        "status_rate": status["rps"] >= TARGET_STATUS_VS_BARE * bare and status["non_2xx"] == 0,
        "join_p99": join["p99_ms"] < TARGET_P99_MS,
        "status_p99": status["p99_ms"] < TARGET_P99_MS,
        "no_lost_or_duplicated": simulation["lost"] == 0 and simulation["duplicated"] == 0,
    }
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()}",
        # Other jobs on the machine skew req/s and latency; this says how busy it was.
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "database": "PostgreSQL" if url.startswith("postgres") else "SQLite",
        "concurrency": CONCURRENCY,
        "seconds_per_phase": SECONDS,
        "rounds": ROUNDS,
        "bare_endpoint": "GET /livez",
        "server": "uvicorn --workers 2 (stock)"
        if STOCK_UVICORN
        else "uvicorn, 2 workers, listener bound with IPPROTO_TCP (uvicorn #3149)",
        "bare_rps": bare,
        "join_rps": join["rps"],
        "status_rps": status["rps"],
        "bare_p99_ms": http["bare"]["p99_ms"],
        "join_p99_ms": join["p99_ms"],
        "status_p99_ms": status["p99_ms"],
        "simulated_users": simulation["simulated_users"],
        "lost": simulation["lost"],
        "duplicated": simulation["duplicated"],
        "targets": met,
        "http": http,
        "simulation": simulation,
        "versions": _versions(),
    }
    if not NO_RECORD:
        write_report(result)
    print(
        json.dumps({k: v for k, v in result.items() if k not in ("http", "simulation")}, indent=2)
    )
    for name in ("bare", "join", "status"):
        h = http[name]
        print(f"{name:6s} {h['rps']:8.1f} req/s ({h['rps'] / bare:.2f}x bare)  p99 {h['p99_ms']} ms"
              f"  server CPU {h['server_cpu_ms_per_request']} ms/req"
              f"  non-2xx {h['non_2xx']}")  # fmt: skip
    for target, text in TARGET_TEXT.items():
        print(f"target {text}: {'met' if met[target] else 'MISSED'}")
    before, after = result["load_average_before_after"]
    print(f"(load average {before} before, {after} after, on {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
