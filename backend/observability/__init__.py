"""Operations: request ids (``requestid``), Prometheus metrics (``instruments``, counted as the
processes work; ``collector``, read from the database when scraped), the per-request middleware,
and who may read the metrics (``exposition``). ``install.install_metrics`` wires it into the API.

What is measured, the alert rules and the dashboard: docs/operations-metrics.md.
"""
