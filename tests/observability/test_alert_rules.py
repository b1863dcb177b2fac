"""ops/prometheus/alerts.yml: valid for promtool, each alert unit-tested both ways (it fires on
series that should fire it, and not on look-alikes), and documented."""

from __future__ import annotations

import re
import subprocess

from tests.observability.tools import DOC, RULES, RULES_TEST, binary

ALERT = re.compile(r"^\s*- alert: (\w+)\s*$", re.MULTILINE)


def alert_names() -> list[str]:
    return ALERT.findall(RULES.read_text())


def test_alert_rules_pass_promtool_check() -> None:
    result = subprocess.run(
        [binary("promtool"), "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in result.stdout


def test_alert_rules_pass_their_unit_tests() -> None:
    result = subprocess.run(
        [binary("promtool"), "test", "rules", str(RULES_TEST)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_quiet_and_documented() -> None:
    names = alert_names()
    assert set(names) >= {
        "FairtixMintLag",
        "FairtixOutboxStale",
        "FairtixIndexerLag",
        "FairtixWebhookBacklog",
        "FairtixHigh5xxRate",
    }
    cases = RULES_TEST.read_text().split("\n  - interval:")[1:]
    doc = DOC.read_text()
    for name in names:
        mine = [case for case in cases if f"alertname: {name}\n" in case]
        fires = [case for case in mine if "exp_labels:" in case]
        quiet = [case for case in mine if "exp_labels:" not in case]
        assert fires, f"{name}: no test where it fires"
        assert quiet, f"{name}: no test where it stays quiet"
        assert f"### {name}" in doc, f"{name}: no section in {DOC.name}"
