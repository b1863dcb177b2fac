"""The metrics fairtix's processes count as they work, in prometheus_client's registry.

With ``PROMETHEUS_MULTIPROC_DIR`` set (an API served by several uvicorn worker processes) each
process writes its values to files there and ``/metrics`` adds them up; the variable must be in
the environment before the process starts, as prometheus_client reads it at import.

Gauges read from the database (outbox, orders, refunds, waiting rooms) are not here: they are
computed when scraped, by :mod:`backend.observability.collector`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Seconds. Most answers take a few milliseconds; a hold with its checkout some tens.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Seconds from paid to minted, from an event's creation to its webhook's arrival.
LAG_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)

HTTP_REQUESTS = Counter(
    "fairtix_http_requests",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "fairtix_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by method, route template and status",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
PAYMENT_WEBHOOK_LAG = Histogram(
    "fairtix_payment_webhook_lag_seconds",
    "Time from a payment provider's event to its webhook reaching fairtix, by provider",
    ["provider"],
    buckets=LAG_BUCKETS,
)
MINT_LAG = Histogram(
    "fairtix_mint_lag_seconds",
    "Time from an order's payment to its tickets recorded minted (card orders)",
    buckets=LAG_BUCKETS,
)
CHAIN_RPC_ERRORS = Counter(
    "fairtix_chain_rpc_errors",
    "Chain JSON-RPC calls that failed: transport (no answer) or error (the node answered one)",
    ["method", "kind"],
)
OUTBOX_FAILURES = Counter(
    "fairtix_outbox_failures",
    "Outbox messages whose handling failed and will be retried, by kind "
    "(notify.webhook: organizers' webhooks; sandbox_webhook: the sandbox's payment webhooks)",
    ["kind"],
)
WEBHOOK_DELIVERIES = Counter(
    "fairtix_webhook_deliveries",
    "Attempts to deliver organizers' webhooks, by result: delivered, retry (failed, will be "
    "tried again), failed (failed for good: a 4xx, a redirect, a refused URL, or out of attempts)",
    ["result"],
)
OUTBOX_DONE = Counter(
    "fairtix_outbox_done",
    "Outbox messages handled, by kind",
    ["kind"],
)
# The worker sets these after each indexer pass; the most recent value of any process counts.
CHAIN_SAFE_HEAD = Gauge(
    "fairtix_chain_safe_head_block",
    "The chain's head less the confirmation depth: the newest block the indexer may read",
    multiprocess_mode="mostrecent",
)
INDEXER_BLOCK = Gauge(
    "fairtix_indexer_block",
    "The last block the indexer has processed",
    multiprocess_mode="mostrecent",
)
INDEXER_LAG = Gauge(
    "fairtix_indexer_lag_blocks",
    "Blocks the indexer is behind the safe head (0: caught up)",
    multiprocess_mode="mostrecent",
)
