"""Prometheus's binaries for the tests: Debian's package (`make system-deps` installs it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "ops" / "prometheus" / "alerts.yml"
RULES_TEST = ROOT / "ops" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "ops" / "grafana" / "fairtix-onsale.json"
DOC = ROOT / "docs" / "operations-metrics.md"


def binary(name: str) -> str:
    """The binary's path; skips without it locally, fails without it under CI=true."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (make system-deps, or apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run it")
        pytest.skip(reason)
    return path
