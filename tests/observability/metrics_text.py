"""Reading Prometheus's text format in tests: plain functions, no fixtures."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by name and labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float | None:
    """The one sample of ``name`` whose labels include ``labels``' (summed if several match)."""
    matching = [
        v
        for (sample_name, sample_labels), v in samples(text).items()
        if sample_name == name and set(labels.items()) <= sample_labels
    ]
    return sum(matching) if matching else None
