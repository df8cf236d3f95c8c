"""GET /metrics (edge.server.metrics) from a real `edge serve` of two workers, on both backends, read by
prometheus-client's own parser: each device's vitals and health as its latest report gave them, the host's
reports and request seconds over both workers, protected like the other reads."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.server import Server, token
from tests.test_alerts import hot
from tests.test_database import reports


def scrape(server: Server, reader: str) -> dict:
    """{(sample name, frozenset of labels): value} of one scrape."""
    status, text = server.get("/metrics", reader)
    assert status == 200, text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels) -> float:
    return found[name, frozenset(labels.items())]


@pytest.fixture(scope="module")
def fleet(new_db):
    db = new_db()
    tokens = {name: token(db, name) for name in ("pi-1", "pi-2")}
    tokens["alice"] = token(db, "alice", "--reader")
    with Server(db, None, "--workers", "2", "--protect-reads").start() as server:
        yield server, tokens


def test_each_device_s_latest_figures_and_the_host_s_own(fleet):
    server, tokens = fleet
    posts = 0
    for n in range(6):  # six POSTs, spread over both workers by the kernel
        made = hot(reports("pi-1", 2, start=1.8e9 + 10 * n), 70.0 + n, "watch")
        # a word twice (the schema takes it): one series, not two, which Prometheus would refuse
        made[-1]["health"].update(throttled_now=["under-voltage"] * 2, disk_free_mb=512.0, restarts=2)
        assert server.post(made, tokens["pi-1"])[0] == 200
        posts += 1
    assert server.post(reports("pi-2", 1), tokens["pi-2"])[0] == 200  # no health: none made up
    posts += 1
    found = scrape(server, tokens["alice"])
    assert value(found, "edge_device_cpu_temperature_celsius", device="pi-1") == 75.0
    assert value(found, "edge_device_disk_free_bytes", device="pi-1") == 512 * 2**20
    assert value(found, "edge_device_restarts", device="pi-1") == 2
    assert value(found, "edge_device_throttled", device="pi-1", limit="under-voltage") == 1
    assert value(found, "edge_device_drift_level", device="pi-1") == 1
    assert value(found, "edge_device_fps", device="pi-1") == 30.0
    assert value(found, "edge_device_inference_p50_seconds", device="pi-1") == pytest.approx(0.004)
    assert value(found, "edge_device_report_interval_seconds", device="pi-2") == 0.5
    assert not [
        key for key in found if key[0] == "edge_device_cpu_temperature_celsius" and ("device", "pi-2") in key[1]
    ]
    for device in ("pi-1", "pi-2"):
        assert value(found, "edge_device_state", device=device, state="online") == 1
        assert value(found, "edge_device_state", device=device, state="offline") == 0
        assert 0 <= value(found, "edge_device_last_report_age_seconds", device=device) < 30
    assert value(found, "edge_device_reports_total", device="pi-1") == 12
    assert value(found, "edge_reports_total") == 13
    assert value(found, "edge_devices", state="online") == 2
    assert value(found, "edge_http_request_duration_seconds_count", endpoint="POST /api/v1/reports") == posts
    assert (
        value(found, "edge_http_request_duration_seconds_bucket", endpoint="POST /api/v1/reports", le="+Inf") == posts
    )
    assert value(found, "edge_database_size_bytes") > 0


def test_every_route_has_a_slot_of_the_shared_timings():
    from edge.server import app, timing

    assert len(app.TIMED) <= timing.SLOTS


def test_metrics_are_read_like_every_device_s_reports(fleet):
    server, tokens = fleet
    assert server.get("/metrics")[0] == 401
    status, body = server.get("/metrics", tokens["pi-1"])
    assert status == 403 and "needs a reader token" in body["error"]
