"""GET /metrics: the fleet's health and the host's own in Prometheus' text format (prometheus-client writes it),
for Prometheus and Grafana. A reader token reads it where reads are protected, as every device's reports.

Per device, from what its row keeps (edge.server.vitals, its latest window): online/late/offline, seconds since
its last report, its report interval, frame rate, p50 inference latency, drift level, the alerts it is in, the
health figures it sends (absent where its board keeps none), and its reports as a counter. The host's own:
reports received (a counter over the database: rate() is reports a second, whichever host took them), devices
by state, request seconds by endpoint (over this host's workers: edge.server.timing), the database's bytes.

Made afresh at each scrape from the database, so every host and worker of one database says the same of the fleet.
"""

import time

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from edge.server import alerts, store, vitals
from edge.server.auth import requires
from edge.server.timing import BUCKETS

# health figure (edge.health) -> (metric, what it is, factor to its unit)
HEALTH = {
    "cpu_temp_c": ("edge_device_cpu_temperature_celsius", "The CPU's temperature.", 1),
    "cpu_percent": ("edge_device_cpu_percent", "CPU in use over the latest window, percent of all cores.", 1),
    "memory_percent": ("edge_device_memory_percent", "Memory in use, percent.", 1),
    "disk_free_mb": ("edge_device_disk_free_bytes", "Free disk where the outbox lives.", 2**20),
    "disk_percent": ("edge_device_disk_used_percent", "Disk in use where the outbox lives, percent.", 1),
    "camera_fps": ("edge_device_camera_fps", "Frames a second the camera delivered.", 1),
    "camera_fps_asked": ("edge_device_camera_fps_asked", "Frames a second asked of the camera.", 1),
    "uptime_s": ("edge_device_uptime_seconds", "Seconds since the device booted.", 1),
    "restarts": ("edge_device_restarts", "Times edge run started again since the device booted.", 1),
}
# vitals figure -> (metric, what it is, factor to its unit)
FIGURES = {
    "interval": ("edge_device_report_interval_seconds", "Seconds each of its reports covers.", 1),
    "fps": ("edge_device_fps", "Frames a second edge run classified.", 1),
    "latency_ms": ("edge_device_inference_p50_seconds", "Median seconds an inference took.", 1e-3),
}
READERS = "'{name}' has a {role} token: /metrics needs a reader token (edge token create NAME --reader)"


@requires("read", READERS)
async def get_metrics(request: Request):
    host = request.app.state.host
    # the pool thread's own connection (host.db() there): the loop's serves other requests meanwhile
    text = await run_in_threadpool(
        lambda: exposition(host.db(), host.shared.timings, request.app.state.timed, time.time())
    )
    return Response(text, media_type=CONTENT_TYPE_LATEST)


def exposition(db, timings, timed: list[str], now: float) -> bytes:
    """The metrics as Prometheus reads them, at `now`; `timed`: the label of each of `timings`' slots."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scrape(db, timings, timed, now))
    return generate_latest(registry)


class _Scrape:
    """One scrape's families (prometheus-client's custom collector)."""

    def __init__(self, db, timings, timed: list[str], now: float):
        self.db, self.timings, self.timed, self.now = db, timings, timed, now

    def collect(self):
        rows = store.watched(self.db)
        raised = alerts.active(self.db)
        yield from _devices(rows, raised, self.now)
        reports = CounterMetricFamily("edge_reports", "Reports the hosts of this database took.")
        reports.add_metric([], sum(count for _, _, count, _ in rows))
        yield reports
        yield _requests(self.timings, self.timed)
        size = GaugeMetricFamily("edge_database_size_bytes", "Bytes the store holds on disk.")
        size.add_metric([], store.size_bytes(self.db))
        yield size


def _devices(rows: list, raised: dict, now: float):
    """The per-device families, and the count of devices a state."""
    gauge = {
        name: GaugeMetricFamily(name, what, labels=["device"])
        for name, what, _ in (*HEALTH.values(), *FIGURES.values())
    }
    state = GaugeMetricFamily(
        "edge_device_state", "1 for the state the device is in: online, late or offline.", labels=["device", "state"]
    )
    age = GaugeMetricFamily(
        "edge_device_last_report_age_seconds", "Seconds since its last report came.", labels=["device"]
    )
    drift = GaugeMetricFamily(
        "edge_device_drift_level", "Its latest drift level: 0 ok, 1 watch, 2 drift.", labels=["device"]
    )
    throttled = GaugeMetricFamily(
        "edge_device_throttled", "1 for each limit its firmware holds it to now.", labels=["device", "limit"]
    )
    alert = GaugeMetricFamily(
        "edge_device_alert", "1 for each alert it is in (edge serve's alerts).", labels=["device", "alert"]
    )
    reports = CounterMetricFamily("edge_device_reports", "Reports the host took from it.", labels=["device"])
    counts = dict.fromkeys(vitals.STATES, 0)
    for device, last_seen, count, kept in rows:
        figures = orjson.loads(kept) if kept else {}
        now_in = vitals.state(figures, last_seen, now)
        counts[now_in] += 1
        for s in vitals.STATES:
            state.add_metric([device, s], float(s == now_in))
        age.add_metric([device], now - last_seen)
        reports.add_metric([device], count)
        health = figures.get("health") or {}
        for table, source in ((HEALTH, health), (FIGURES, figures)):
            for key, (name, _, factor) in table.items():
                if isinstance(source.get(key), int | float):
                    gauge[name].add_metric([device], source[key] * factor)
        if figures.get("drift") in vitals.DRIFT_LEVELS:
            drift.add_metric([device], vitals.DRIFT_LEVELS[figures["drift"]])
        for limit in dict.fromkeys(health.get("throttled_now") or []):  # a word twice would be a series twice
            throttled.add_metric([device, limit], 1)
        for a in raised.get(device, []):
            alert.add_metric([device, a["alert"]], 1)
    yield from (state, age, reports, *gauge.values(), drift, throttled, alert)
    devices = GaugeMetricFamily("edge_devices", "Devices in each state.", labels=["state"])
    for s, n in counts.items():
        devices.add_metric([s], n)
    yield devices


def _requests(timings, timed: list[str]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        "edge_http_request_duration_seconds", "Seconds this host took to answer, by endpoint.", labels=["endpoint"]
    )
    for slot, label in enumerate(timed):
        cumulative, total = timings.read(slot)
        if cumulative[-1]:
            bounds = [*(repr(b) for b in BUCKETS), "+Inf"]
            family.add_metric([label], list(zip(bounds, cumulative, strict=True)), total)
    return family
