"""The pure parts of devenv's moto patches (devenv/infra/moto_patches.py)."""

from __future__ import annotations

import pytest

from devenv.infra.moto_patches import PERCENTILE, percentile


def test_a_percentile_is_the_smallest_value_with_that_share_of_the_samples_at_or_below_it():
    samples = [(float(v), 1.0) for v in range(1, 101)]  # 1 .. 100 once each
    assert [percentile(samples, p) for p in (0, 1, 50, 90, 99, 99.5, 100)] == [1, 1, 50, 90, 99, 100, 100]


def test_counts_weigh_the_values_and_their_order_does_not_matter():
    samples = [(0.5, 1.0), (0.01, 90.0), (0.02, 9.0)]  # 100 samples
    assert percentile(samples, 50) == 0.01
    assert percentile(samples, 90) == 0.01
    assert percentile(samples, 91) == 0.02
    assert percentile(samples, 99) == 0.02
    assert percentile(samples, 99.1) == 0.5


def test_no_samples_no_percentile():
    assert percentile([], 50) is None
    assert percentile([(3.0, 0.0)], 50) is None


@pytest.mark.parametrize("stat, valid", [("p50", True), ("p99.9", True), ("p0", True), ("p100", True),
                                         ("p100.0", True), ("p101", False), ("p", False), ("P99", False),
                                         ("Average", False), ("tm99", False)])
def test_percentile_statistics_are_spelled_as_cloudwatch_spells_them(stat, valid):
    assert bool(PERCENTILE.match(stat)) is valid


def test_a_group_keeps_events_for_its_retention_in_days_or_forever():
    from devenv.infra.moto_patches import DAY_MS, retained_from

    now = 1_800_000_000_000
    assert retained_from(None, now) is None and retained_from(0, now) is None
    assert retained_from(1, now) == now - DAY_MS
    assert retained_from("30", now) == now - 30 * DAY_MS  # as moto may hold it: the request's value


def test_the_emulator_starts_without_importing_the_slow_services():
    """moto.xray (the X-Ray SDK) and moto.iam (cryptography) cost ~0.25 s of every start:
    devenv's server builds its application without them; they load on first use."""
    import subprocess
    import sys

    probe = ("import sys\n"
             "from devenv.infra.moto_server import application\n"
             "application()\n"
             "print(sorted(m for m in ('aws_xray_sdk', 'moto.xray', 'moto.iam', 'cryptography.x509')"
             " if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_service_patched_on_first_use_is_patched_before_its_app_is_built(monkeypatch):
    from devenv.infra import moto_patches

    calls: list[str] = []
    monkeypatch.setitem(moto_patches.ON_FIRST_USE, "xray", lambda: calls.append("patched xray"))
    create = moto_patches.patching_on_first_use(lambda service: calls.append(f"app {service}") or service)
    assert create("sqs") == "sqs" and create("xray") == "xray"
    assert calls == ["app sqs", "patched xray", "app xray"]
