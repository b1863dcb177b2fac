"""The ``fairtix`` command: run the service, the devnet, the worker, or the demo buyer."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import time
from pathlib import Path

from pydantic import ValidationError

from backend.config import REPO_ROOT, ConfigError, Settings

DESCRIPTION = """\
fairtix: fair ticket sales with a waiting room, card checkout and ERC-721 tickets.

Every setting is an environment variable FAIRTIX_*, all listed in docs/configuration.md. With
none set you get the embedded profile: SQLite and IPFS blocks under ./var, sandbox card payments,
anvil devnet.
"""

EPILOG = """\
examples:
  fairtix run --devnet        start anvil where FAIRTIX_RPC_URL says (default :8545) if not
                              running, deploy, serve on :8000
  fairtix devnet              just the devnet, until Ctrl-C (chain kept in var/anvil-state.json)
  fairtix demo                a scripted buyer, against the running service
  fairtix worker              the outbox worker alone (scale-out: FAIRTIX_RUN_WORKER=false on APIs)
  fairtix rotate-key --grant 0xNEW    hand the backend key's roles to a new key (then --revoke)
"""

ROTATE_HELP = """\
Rotate the backend's key (FAIRTIX_MINTER_PRIVATE_KEY): the factory's admin and event creator,
and every event contract's admin, minter, permit signer, scanner and relayer.

  1. fairtix rotate-key --grant 0xNEW      with the current key configured: NEW gets every role,
                                           on the factory and each event contract in the database
  2. switch FAIRTIX_MINTER_PRIVATE_KEY to the new key and restart the API and workers; they
     finish the old key's unfinished mint batches
  3. fairtix rotate-key --revoke 0xOLD     with the new key configured, once the old key has no
                                           unfinished batch (it refuses until then) and the
                                           holds open at the switch have run out: a crypto
                                           permit the old key signed stops working here

Each role is checked on chain before it is changed: an interrupted run is simply run again.
--dry-run lists the contracts without sending anything.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fairtix",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="serve the API (optionally with a local devnet)")
    run.add_argument("--devnet", action="store_true", help="start anvil first if it isn't running")
    run.add_argument("--host", help="listen address (default FAIRTIX_HOST or 127.0.0.1)")
    run.add_argument("--port", type=int, help="listen port (default FAIRTIX_PORT or 8000)")

    devnet = commands.add_parser("devnet", help="run the anvil devnet until Ctrl-C")
    devnet.add_argument("--port", type=int, default=8545)
    devnet.add_argument(
        "--state",
        type=Path,
        default=REPO_ROOT / "var" / "anvil-state.json",
        help="chain state file, loaded on start and saved on stop (default var/anvil-state.json)",
    )
    devnet.add_argument("--fresh", action="store_true", help="delete the state file first")

    commands.add_parser("worker", help="run the outbox worker loop (mints, webhook deliveries)")

    demo = commands.add_parser("demo", help="drive a scripted buyer through the whole sale")
    demo.add_argument(
        "--url", help="API base URL (default FAIRTIX_PUBLIC_BASE_URL or http://127.0.0.1:8000)"
    )

    rotate = commands.add_parser(
        "rotate-key",
        help="hand the backend key's on-chain roles to a new key, or take them from an old one",
        description=ROTATE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    direction = rotate.add_mutually_exclusive_group(required=True)
    direction.add_argument("--grant", metavar="ADDRESS", help="the new key's address")
    direction.add_argument("--revoke", metavar="ADDRESS", help="the rotated-out key's address")
    rotate.add_argument("--dry-run", action="store_true", help="list the contracts; send nothing")

    scan = commands.add_parser(
        "scan",
        help="a gate's scanner in a terminal: codes on stdin (a USB QR reader types them)",
        description=SCAN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scan.add_argument(
        "--url", help="API base URL (default FAIRTIX_PUBLIC_BASE_URL or http://127.0.0.1:8000)"
    )
    scan.add_argument("--gate", required=True, help="this gate's name, as registered")
    scan.add_argument(
        "--credential",
        help="the device credential (fts_...); default FAIRTIX_SCANNER_CREDENTIAL",
    )
    scan.add_argument(
        "--offline-ready",
        action="store_true",
        help="download the door manifest first, to go on admitting if the network drops",
    )
    scan.add_argument("code", nargs="*", help="codes to scan; none: read lines from stdin")

    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "devnet":
            return _devnet(args)
        if args.command == "worker":
            return _worker()
        if args.command == "rotate-key":
            return _rotate_key(args)
        if args.command == "scan":
            return _scan(args)
        return _demo(args)
    except ConfigError as exc:
        print(f"fairtix: configuration error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        for error in exc.errors():
            name = "FAIRTIX_" + "_".join(str(part) for part in error["loc"]).upper()
            print(f"fairtix: configuration error: {name}: {error['msg']}", file=sys.stderr)
        return 2


SCAN_HELP = """\
Scans entry codes at one gate with a scanner device's credential (POST /admin/events/{id}/scanners
gives one). Each code scanned prints one line: ADMITTED or REFUSED and why. With --offline-ready
the door manifest is downloaded first: if the service can't be reached the gate goes on deciding
on its own and uploads those scans (POST /door/sync) once it is back, or at the end.
"""


def _scan(args: argparse.Namespace) -> int:
    import httpx

    from backend.door.client import run_gate

    credential = args.credential or os.environ.get("FAIRTIX_SCANNER_CREDENTIAL")
    if not credential:
        print("fairtix scan: --credential or FAIRTIX_SCANNER_CREDENTIAL is needed", file=sys.stderr)
        return 2
    url = args.url or os.environ.get("FAIRTIX_PUBLIC_BASE_URL", "http://127.0.0.1:8000")
    lines = args.code or sys.stdin
    with httpx.Client(base_url=url, timeout=5) as http:
        return run_gate(http, credential, args.gate, lines, sys.stdout, args.offline_ready)


def _settings(**overrides: object) -> Settings:
    from backend.logs import configure_logging

    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logging(settings.log_level, settings.log_json)
    return settings


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    from backend.app import build_chain, create_app
    from backend.chain.devnet import Devnet, devnet_account, devnet_address
    from backend.chain.errors import ChainError

    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    devnet: Devnet | None = None
    if args.devnet:
        if "FAIRTIX_ADMIN_ADDRESSES" not in os.environ:
            # On the devnet, devnet account #1 is the admin so `fairtix demo` can create events.
            overrides["admin_addresses"] = devnet_account(1).address
        settings = _settings(**overrides)
        try:
            host, port = devnet_address(settings.rpc_url)
        except ValueError as exc:
            print(f"fairtix: {exc}", file=sys.stderr)
            return 2
        devnet = Devnet(
            host=host,
            port=port,
            state_file=settings.var_dir / "anvil-state.json",
            log_file=settings.var_dir / "anvil.log",
        )
        devnet.start()
        print(f"devnet:  {devnet.rpc_url} (chain id 31337{', reused' if devnet.reused else ''})")
        _deploy_on_devnet(settings, devnet.rpc_url)
    else:
        settings = _settings(**overrides)
    try:
        settings.check_production_ready()
        try:
            # Connect before serving, so a wrong RPC URL or a missing key is one clear line.
            chain = build_chain(settings)
        except ChainError as exc:
            print(f"fairtix: {exc}", file=sys.stderr)
            print(
                "fairtix: check FAIRTIX_RPC_URL, or use `make run` to start the local devnet",
                file=sys.stderr,
            )
            return 2
        app = create_app(settings, chain=chain)
        base = settings.public_base_url
        print(f"API:     {base}")
        print(f"site:    {base}/  (the web client: fans, organizers, the door)")
        print(f"docs:    {base}/docs  (OpenAPI: {base}/openapi.json)")
        print(f"health:  {base}/health")
        if settings.admin_addresses:
            print(f"admins:  {', '.join(settings.admin_addresses)}")
        sys.stdout.flush()
        server = uvicorn.Server(
            uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None)
        )
        # uvicorn shuts down gracefully on Ctrl-C, then raises the interrupt again for whoever
        # called it: that is us, and the shutdown is already logged, so no traceback.
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
        if not server.started:
            print("fairtix: the API did not start; the log above says why", file=sys.stderr)
            return 1
    finally:
        if devnet is not None:
            devnet.stop()
    return 0


def _deploy_on_devnet(settings: Settings, rpc_url: str) -> None:
    from backend.chain.client import connect_rpc
    from backend.chain.deploy import deploy_factory_if_needed
    from backend.chain.devnet import devnet_account

    deploy_factory_if_needed(
        connect_rpc(rpc_url),
        devnet_account(0),
        settings.deployments_dir.parent,
        report=lambda line: print(f"deploy:  {line}"),
    )


def _devnet(args: argparse.Namespace) -> int:
    from backend.chain.devnet import Devnet, devnet_account

    if args.fresh and args.state.exists():
        args.state.unlink()
    args.state.parent.mkdir(parents=True, exist_ok=True)
    with Devnet(
        port=args.port, state_file=args.state, log_file=args.state.with_suffix(".log")
    ) as net:
        print(f"anvil devnet on {net.rpc_url}, chain id 31337, state in {args.state}")
        for index in range(2):
            print(f"  account #{index}: {devnet_account(index).address} (public test key)")
        print("Ctrl-C to stop (the chain state is saved on stop)")
        sys.stdout.flush()
        stop = {"now": False}

        def _stop(_signum: int, _frame: object) -> None:
            stop["now"] = True

        signal.signal(signal.SIGTERM, _stop)
        try:
            while not stop["now"]:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    print("devnet stopped")
    return 0


def _worker() -> int:
    # The worker serves its own metrics (FAIRTIX_WORKER_METRICS_PORT). In an environment shared
    # with a multi-process API it must not also write into the API's PROMETHEUS_MULTIPROC_DIR,
    # or /metrics would count its work a second time. Before prometheus_client is imported.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from backend.app import build_runtime
    from backend.gc_tuning import tune_for_service
    from backend.guard.recursion import cap_recursion_limit
    from backend.observability.install import serve_worker_metrics
    from backend.worker import Worker

    # The worker parses what other servers answer (RPC nodes, PayPal, webhook endpoints): a
    # hostile answer must be a RecursionError there too, not a crash.
    cap_recursion_limit()
    settings = _settings()
    _warn_if_nonces_unshared(settings, "fairtix worker", "fairtix.worker")
    worker = Worker(build_runtime(settings))
    metrics = serve_worker_metrics(settings)
    tune_for_service()
    # The handler only asks; the deliveries in progress are waited for below, not cut off.
    signal.signal(signal.SIGTERM, lambda *_: worker.request_stop())
    with contextlib.suppress(KeyboardInterrupt):
        worker.run_forever()
    worker.stop()
    if metrics is not None:
        metrics.shutdown()
    return 0


def _rotate_key(args: argparse.Namespace) -> int:
    from web3 import Web3

    from backend.app import build_chain
    from backend.chain import rotation
    from backend.db.engine import make_engine, make_session_factory
    from backend.fulfilment.nonces import NonceFloor

    account = args.grant or args.revoke
    if not Web3.is_address(account):
        print(f"fairtix rotate-key: {account!r} is not an Ethereum address", file=sys.stderr)
        return 2
    settings = _settings()
    _warn_if_nonces_unshared(settings, "fairtix rotate-key", "fairtix.chain")
    engine = make_engine(settings.database_url)
    chain = build_chain(settings)
    # The same nonce discipline as the API and the workers, which may be running meanwhile.
    chain.use_nonce_floor(NonceFloor(engine, chain))
    sessions = make_session_factory(engine)
    try:
        contracts = rotation.contracts_of(chain, sessions)
        verb = "granting" if args.grant else "revoking"
        print(f"{verb} the roles of {len(contracts)} contract(s) on chain {chain.chain_id} "
              f"for {account}, signed by {chain.signer_address}")  # fmt: skip
        if args.dry_run:
            for contract in contracts:
                print(f"  {contract.label:<12} {contract.address}  {', '.join(contract.roles)}")
            return 0

        def report(change: rotation.RoleChange) -> None:
            done = ("granted" if args.grant else "revoked") if change.changed else "unchanged"
            print(f"  {change.contract.label:<12} {change.contract.address}  "
                  f"{change.role}: {done}", flush=True)  # fmt: skip

        try:
            if args.grant:
                rotation.grant(chain, contracts, account, report)
            else:
                rotation.revoke(chain, sessions, contracts, account, report)
        except rotation.RotationRefused as exc:
            print(f"fairtix rotate-key: refused: {exc}", file=sys.stderr)
            return 1
        if args.grant:
            print("done: now set FAIRTIX_MINTER_PRIVATE_KEY to the new key and restart; "
                  "revoke the old key once its batches are finished")  # fmt: skip
        else:
            print("done: the old key holds no role of the service any more")
        return 0
    finally:
        chain.use_nonce_floor(None)
        engine.dispose()


def _warn_if_nonces_unshared(settings: Settings, command: str, logger: str) -> None:
    """The API signs its own transactions (event creation, cancellation) with the same key;
    only PostgreSQL's advisory lock makes two processes agree on the key's next nonce."""
    if settings.database_url.startswith("sqlite"):
        logging.getLogger(logger).warning(
            f"{command} on SQLite: run no API process beside it that signs transactions "
            "(create or cancel events), or use PostgreSQL; two processes choosing nonces for "
            "one key without its lock can send two transactions with the same nonce"
        )


def _demo(args: argparse.Namespace) -> int:
    import httpx

    from backend.chain.devnet import devnet_account
    from backend.demo import ApiError, run_demo

    settings = Settings()
    url = args.url or settings.public_base_url
    try:
        run_demo(url, devnet_account(1), rpc_url=settings.rpc_url)
    except httpx.ConnectError:
        print(
            f"fairtix demo: nothing answers at {url}; start the service with `make run`",
            file=sys.stderr,
        )
        return 1
    except ApiError as exc:
        print(f"fairtix demo: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    logging.captureWarnings(True)
    raise SystemExit(main())
