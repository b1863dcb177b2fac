"""A real Prometheus server scrapes a real API (uvicorn, two worker processes, multiprocess
metrics) and a real `fairtix worker`, both on one anvil devnet, and finds fairtix's series; it
loads ops/prometheus/alerts.yml and evaluates every expression of the Grafana dashboard."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.chain.client import connect_rpc
from backend.chain.deploy import deploy_factory_if_needed
from backend.chain.devnet import Devnet, devnet_account
from backend.db.engine import make_engine
from backend.db.migrate import upgrade_to_head
from tests.observability.tools import DASHBOARD, ROOT, RULES, binary

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

TOKEN = "scrape-test-token"
REQUESTS = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Any, processes: dict[str, subprocess.Popen[bytes]],
             logs: Path, timeout: float = 60) -> Any:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                pytest.fail(f"{name} exited: {(logs / name).read_text()[-3000:]}")
        try:
            result = check()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        time.sleep(0.25)
    tails = {name: (logs / name).read_text()[-1500:] for name in processes}
    pytest.fail(f"timed out waiting for {what}: {tails}")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    prometheus = binary("prometheus")
    logs = tmp_path / "logs"
    logs.mkdir()
    processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str, command: list[str], env: dict[str, str]) -> None:
        with (logs / name).open("wb") as out:
            processes[name] = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    with Devnet(port=free_port(), log_file=tmp_path / "anvil.log") as devnet:
        factory = deploy_factory_if_needed(
            connect_rpc(devnet.rpc_url), devnet_account(0), tmp_path
        )["TicketFactory"]["address"]
        database_url = f"sqlite:///{tmp_path / 'fairtix.db'}"
        engine = make_engine(database_url)
        upgrade_to_head(engine)  # before the processes start, so they don't race to migrate
        engine.dispose()
        api_port, worker_port, prometheus_port = free_port(), free_port(), free_port()
        multiproc = tmp_path / "multiproc"
        multiproc.mkdir()
        env = {
            **os.environ,
            "FAIRTIX_ENV": "test",
            "FAIRTIX_DATABASE_URL": database_url,
            "FAIRTIX_RPC_URL": devnet.rpc_url,
            "FAIRTIX_FACTORY_ADDRESS": factory,
            "FAIRTIX_SECRET_KEY": "scrape-test-secret",
            "FAIRTIX_RUN_WORKER": "false",
            "FAIRTIX_VAR_DIR": str(tmp_path / "var"),
            "FAIRTIX_LOG_LEVEL": "WARNING",
            "FAIRTIX_METRICS_TOKEN": TOKEN,
            "FAIRTIX_WORKER_METRICS_PORT": str(worker_port),
            # Both get it, as from one environment file: the worker must leave it alone.
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        }
        start(
            "api",
            [sys.executable, "-m", "uvicorn", "backend.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(api_port), "--workers", "2",
             "--log-level", "warning"],
            env,
        )  # fmt: skip
        start("worker", [sys.executable, "-m", "backend.cli", "worker"], env)
        config = tmp_path / "prometheus.yml"
        config.write_text(
            json.dumps(  # JSON is YAML
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(RULES)],
                    "scrape_configs": [
                        {
                            "job_name": "fairtix-api",
                            "authorization": {"credentials": TOKEN},
                            "static_configs": [{"targets": [f"127.0.0.1:{api_port}"]}],
                        },
                        {
                            "job_name": "fairtix-worker",
                            "authorization": {"credentials": TOKEN},
                            "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}],
                        },
                    ],
                }
            )
        )
        try:
            api = f"http://127.0.0.1:{api_port}"
            wait_for(
                "the API", lambda: httpx.get(f"{api}/livez").status_code == 200, processes, logs
            )
            # Requests to count, each on a connection of its own: they spread over both workers.
            for n in range(REQUESTS):
                assert httpx.get(f"{api}/events/{900_000 + n}").status_code == 404
            start(
                "prometheus",
                [prometheus, f"--config.file={config}",
                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{prometheus_port}"],
                dict(os.environ),
            )  # fmt: skip
            yield {
                "prometheus": f"http://127.0.0.1:{prometheus_port}",
                "api": api,
                "processes": processes,
                "logs": logs,
                "multiproc": multiproc,
            }
        finally:
            for process in processes.values():
                process.terminate()
            for process in processes.values():
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()


def query(base: str, promql: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{base}/api/v1/query", params={"query": promql}).json()
    assert answer["status"] == "success", (promql, answer)
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def test_prometheus_scrapes_api_and_worker_and_finds_fairtix_series(
    stack: dict[str, Any],
) -> None:
    prom, processes, logs = stack["prometheus"], stack["processes"], stack["logs"]
    count_404 = (
        'sum(fairtix_http_requests_total{job="fairtix-api",route="/events/{event_id}",'
        'status="404"})'
    )

    def scraped() -> bool:
        up = query(prom, 'up{job=~"fairtix-.*"} == 1')
        counted = query(prom, count_404)
        return len(up) == 2 and bool(counted) and float(counted[0]["value"][1]) >= REQUESTS

    # Until its storage is open the server answers 503 "Service Unavailable" to queries.
    ready = lambda: httpx.get(f"{prom}/-/ready").status_code == 200  # noqa: E731
    wait_for("Prometheus ready", ready, processes, logs)
    wait_for("both targets up and the requests counted", scraped, processes, logs)
    # Both uvicorn workers' counts, added up from PROMETHEUS_MULTIPROC_DIR: all the requests,
    # whichever process answered the scrape; the worker wrote none of its own there.
    assert float(query(prom, count_404)[0]["value"][1]) == REQUESTS
    writers = {int(p.stem.split("_")[-1]) for p in stack["multiproc"].glob("*.db")}
    assert len(writers) == 2 and writers <= _children(processes["api"].pid)
    assert processes["worker"].pid not in writers
    # Read from the database at scrape time, by the API.
    depth = query(prom, 'fairtix_outbox_depth{job="fairtix-api"}')
    assert {s["metric"]["kind"] for s in depth} >= {"mint_order", "notify.webhook"}
    assert query(prom, 'fairtix_state_up{job="fairtix-api"} == 1')
    assert query(prom, 'fairtix_orders{job="fairtix-api",status="fulfilled"}')
    # Set by the worker's indexer pass, on the worker's own endpoint.
    assert query(prom, 'fairtix_indexer_lag_blocks{job="fairtix-worker"}')
    assert query(prom, 'fairtix_chain_safe_head_block{job="fairtix-worker"} > 0')
    assert not query(prom, 'fairtix_http_requests_total{job="fairtix-worker"}')

    rules = httpx.get(f"{prom}/api/v1/rules").json()["data"]["groups"]
    loaded = {rule["name"]: rule["health"] for group in rules for rule in group["rules"]}
    assert set(loaded) >= {"FairtixMintLag", "FairtixHigh5xxRate", "FairtixIndexerLag"}
    assert set(loaded.values()) == {"ok"}, loaded

    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert len(expressions) > 20
    for expression in expressions:
        query(prom, expression.replace("$event", ".*"))  # every one evaluates
    names = set(re.findall(r"fairtix_[a-z_]+", " ".join(expressions)))
    missing = [name for name in sorted(names) if not query(prom, f"count({name})")]
    # Histograms that saw no observation yet (no sale here) have no buckets to show.
    assert set(missing) <= {
        "fairtix_mint_lag_seconds_bucket",
        "fairtix_mint_lag_seconds_count",
        "fairtix_payment_webhook_lag_seconds_bucket",
        "fairtix_queue_waiting",
        "fairtix_queue_admitted",
        "fairtix_queue_admissions_per_minute",
        "fairtix_queue_abandonment_ratio",
        "fairtix_chain_rpc_errors_total",
        "fairtix_outbox_failures_total",
        "fairtix_webhook_deliveries_total",
    }, missing


def _children(master: int) -> set[int]:
    """The uvicorn master's children: its workers (and multiprocessing's helper)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {int(pid) for pid in children}
