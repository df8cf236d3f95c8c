"""Do calls slow the frame loop? `edge run` frames per second with no calls, against the same run publishing every
call to an MQTT broker and POSTing it to a web hook (`--publish`, `--webhook`, `--hold 1`), and, with
`--report-to` a live `edge serve` every 0.2 s (health read each window), against the same run reporting only;
and how late a call reaches a subscriber.

    python benchmarks/calls_bench.py                    # MobileNetV2 int8 @ 224, 640x480 MJPG, 1000 frames, 3 rounds

The video: real images (scikit-learn's two sample photographs, several views of each, and its scanned digits
enlarged) held --segment frames each, one after another so that the model's label changes from one to the next:
the images are first labelled by the model itself (one `edge run` with --log; an image whose frames disagree is
left out), then dealt round the labels. With --hold 1 every change is a call: ~1 call every 3 frames, ~110 calls/s
read as fast as it goes, far more than a camera that dwells. The broker is Debian's mosquitto on loopback
(tests/mosquitto.py), the hook a local HTTP server (tests/webhooks.py), the host a real `edge serve`
(tests/server.py): all on the same cores as `edge run`, which a device's broker and hook are not.

Phases, alternating each round (median of --rounds), every one with --log (a JSON line a frame, for the latency):
no calls; calls; reporting only; reporting + calls. Then, each round, the calls run paced (--realtime: the file
played at 30 fps, as a camera delivers) for --paced-seconds, for latency without the read-ahead queue (up to 8
frames wait for the model when a file is read as fast as it goes, and frame_ms counts that wait).

Latency: a subscriber on PREFIX/+/call keeps each message's arrival time (time.time()); a call carries `at` (Unix
time when it was made, after inference, to the ms) and `frame`; made → subscriber is arrival - at, and frame →
subscriber adds that frame's frame_ms from the log (capture to result). The hook's arrivals are kept likewise.

Targets (issue 32): calls and health cost <= 1% of the frame rate (calls / no calls >= 0.99); frame to subscriber
p99 <= 50 ms on loopback. Health's own cost is also timed in-process: edge.health's read, once a window.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.run_bench import edge_run, pan, write_video  # noqa: E402
from edge.health import Health  # noqa: E402
from edge.server.store import create_token, open_db  # noqa: E402
from edge.version import cpu_name  # noqa: E402
from tests.mosquitto import Broker, Subscriber  # noqa: E402
from tests.server import Server, cpu_seconds  # noqa: E402
from tests.webhooks import Receiver  # noqa: E402

SHAPE = (640, 480)  # what USB cameras send, as run_bench writes it
OTHER = "retention_bench"  # another benchmark whose end this one waits for
PHASES = ("no calls", "calls", "reporting", "reporting + calls")
CALLING = ("calls", "reporting + calls")  # the phases that publish and POST calls
DEVICE = "bench-pi"


def quiet() -> None:
    """Wait until no other benchmark runs on the machine: both would measure each other."""
    said = False
    while subprocess.run(["pgrep", "-f", OTHER], capture_output=True).returncode == 0:
        if not said:
            print(f"waiting for {OTHER} to end ...", flush=True)
            said = True
        time.sleep(10)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Arrivals(list):
    """The hook receiver's bodies, each with its arrival time (tests/webhooks.py appends what it answered 2xx)."""

    def __init__(self):
        super().__init__()
        self.at: list[float] = []

    def append(self, body) -> None:
        self.at.append(time.time())
        super().append(body)


def views(photos: list) -> tuple[list[np.ndarray], list[int]]:
    """Real images at 640x480, BGR, and their class: views of each photograph (a pan's steps; classes 0 and 1),
    the digits enlarged dark on light (2) and light on dark (3)."""
    from sklearn.datasets import load_digits

    shots = [pan(photos, SHAPE, 300 * p + 40 * i) for p in range(len(photos)) for i in range(10)]
    classes = [p for p in range(len(photos)) for _ in range(10)]
    digits = load_digits()
    for d in range(20):
        scan = cv2.resize((digits.images[d] * (255 / 16)).astype(np.uint8), SHAPE, interpolation=cv2.INTER_CUBIC)
        shots += [np.dstack([255 - scan] * 3), np.dstack([scan] * 3)]
        classes += [2, 3]
    return shots, classes


def model_for(shots: list, classes: list, work: Path) -> Path:
    """MobileNetV2 int8 @ 224 whose head tells the images' classes apart. Its trunk's weights are untrained (speed
    does not depend on them, and none are downloaded here), and an untrained model gives every image one label: its
    head is fitted to the images' pooled features instead (least squares, to logits of +-4), so calls change."""
    from edge.converter.backbones import build_classifier, get_backbone
    from edge.converter.quantize import calibration_images, to_tflite

    clf = build_classifier(get_backbone("mobilenetv2"), 4, 224, weights="none")
    keras_model: Any = clf.model  # Keras models (the Classifier types them as objects)
    features_of: Any = clf.features
    pixels = np.stack([cv2.resize(s, (224, 224), interpolation=cv2.INTER_AREA)[..., ::-1] for s in shots])
    features = features_of.predict(pixels.astype(np.float32), verbose=0)
    features = np.hstack([features, np.ones((len(features), 1), np.float32)])
    weights, *_ = np.linalg.lstsq(features, np.eye(4)[classes] * 8 - 4, rcond=None)
    keras_model.get_layer("head").set_weights([weights[:-1].astype(np.float32), weights[-1].astype(np.float32)])
    path = work / "mobilenetv2-224-int8.tflite"
    path.write_bytes(to_tflite(keras_model, "int8", "uint8", calibration_images(pixels, 50, 0)))
    return path


def labelled(model: Path, shots: list, work: Path, threads: int, segment: int) -> dict[str, list[np.ndarray]]:
    """The images by the label `edge run` gives them, each held `segment` frames; an image whose frames the model
    does not all give one label is left out."""
    video = write_video(work / "views.avi", "MJPG", SHAPE, (s for s in shots for _ in range(segment)))
    edge_run(model, video, threads, "--log", work / "views.jsonl")
    frames = [json.loads(line)["label"] for line in (work / "views.jsonl").read_text().splitlines()]
    groups: dict[str, list[np.ndarray]] = {}
    for i, shot in enumerate(shots):
        calls = set(frames[i * segment : (i + 1) * segment])
        if len(calls) == 1:
            groups.setdefault(calls.pop(), []).append(shot)
    if len(groups) < 2:
        raise SystemExit(f"the model gives these images one label ({list(groups)}): no calls to make")
    return groups


def dealt(groups: dict[str, list[np.ndarray]], frames: int, segment: int):
    """`frames` frames: the images dealt round the labels, so the next image's label is another, each held
    `segment` frames."""
    order = sorted(groups)
    for k in range(-(-frames // segment)):
        label = order[k % len(order)]
        shot = groups[label][(k // len(order)) % len(groups[label])]
        yield from [shot] * min(segment, frames - k * segment)


def timed_run(model: Path, video: Path, threads: int, *args) -> tuple[dict, float]:
    """`edge run`'s summary and the CPU seconds it used (user + system, from start to end)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = edge_run(model, video, threads, *args)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return summary, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def latencies(subscriber: Subscriber, hook: Arrivals, log: Path) -> dict[str, list[float]]:
    """ms, each call: frame (capture) -> result (the log's frame_ms), made -> subscriber, frame -> subscriber,
    made -> hook."""
    frame_ms = {r["frame"]: r["frame_ms"] for r in map(json.loads, log.read_text().splitlines())}
    got: dict[str, list[float]] = {
        "frame → result": [],
        "made → subscriber": [],
        "frame → subscriber": [],
        "made → hook": [],
    }
    for _, text, _, arrived in subscriber.messages:
        event = json.loads(text)
        got["frame → result"].append(frame_ms[event["frame"]])
        got["made → subscriber"].append((arrived - event["at"]) * 1000)
        got["frame → subscriber"].append((arrived - event["at"]) * 1000 + frame_ms[event["frame"]])
    got["made → hook"] = [(at - b["at"]) * 1000 for b, at in zip(hook, hook.at, strict=True) if b["event"] == "call"]
    return got


def health_ms(work: Path, reads: int = 200) -> float:
    """ms one edge.health read takes on this machine (the figures a report window carries)."""
    health = Health(work, 30.0)
    health.read(0)
    start = time.perf_counter()
    for i in range(reads):
        health.read(i)
    return (time.perf_counter() - start) * 1000 / reads


def measure(args, work: Path) -> dict:
    from sklearn.datasets import load_sample_images

    photos = list(load_sample_images().images)
    (work / "labels.txt").write_text("0\n1\n2\n3\n")
    shots, classes = views(photos)
    model = model_for(shots, classes, work)
    groups = labelled(model, shots, work, args.threads, args.segment)
    print(f"images by the model's label: { {k: len(v) for k, v in groups.items()} }", flush=True)
    video = write_video(work / "calls.avi", "MJPG", SHAPE, dealt(groups, args.frames, args.segment))
    db = open_db(work / "edge.db")
    token = create_token(db, DEVICE)
    db.close()
    server = Server(work / "edge.db").start()
    broker = Broker()
    rows: dict[str, list[dict]] = {name: [] for name in PHASES}
    paced: list[dict] = []
    lat: dict[str, dict[str, list[float]]] = {"read as fast as it goes": {}, "paced at 30 fps": {}}
    quiet()
    print(f"load average before: {load()}", flush=True)
    try:
        for round_ in range(args.rounds):
            for name in PHASES:
                rows[name].append(
                    phase(name, f"{round_}-{name[:1]}{len(name)}", model, video, args, work, server, token, broker, lat)
                )
            paced.append(phase("calls", f"{round_}-paced", model, video, args, work, server, token, broker, lat, True))
            print(f"round {round_ + 1}: " + ", ".join(f"{n} {rows[n][-1]['fps']:.1f}" for n in PHASES), flush=True)
    finally:
        broker.__exit__()
        server.stop()
    after = load()
    return {
        "rows": rows,
        "paced": paced,
        "latency_ms": lat,
        "health_read_ms": health_ms(work),
        "images": {k: len(v) for k, v in groups.items()},
        "load_after": after,
    }


def phase(name, run, model, video, args, work, server, token, broker, lat, realtime=False) -> dict:
    """One `edge run` of phase `name`: its fps, CPU, calls; the latency of its calls added to `lat`."""
    log = work / f"frames-{run}.jsonl"
    extra: list = ["--log", log] + (["--device-id", DEVICE] if name != "no calls" else [])
    subscriber = hook = receiver = None
    if "reporting" in name:
        extra += ["--report-to", server.url, "--token", token, "--report-every", "0.2"]
        extra += ["--outbox", work / f"outbox-{run}" / "outbox.db"]
    if name in CALLING:
        prefix = f"bench/{run.replace(' ', '')}"
        subscriber = Subscriber(broker, f"{prefix}/+/call")
        receiver = Receiver()
        receiver.bodies = hook = Arrivals()
        extra += ["--publish", broker.url(prefix), "--webhook", receiver.url, "--hold", "1"]
    if realtime:
        extra += ["--realtime", "--duration", args.paced_seconds]
    broker_cpu, own_cpu = cpu_seconds(broker.process.pid), time.process_time()
    summary, cpu = timed_run(model, video, args.threads, *extra)
    row = {
        "fps": summary["fps"],
        "frames": summary["frames"],
        "cpu_ms_per_frame": cpu * 1000 / summary["frames"],
        "broker_cpu_s": cpu_seconds(broker.process.pid) - broker_cpu,
        "bench_cpu_s": time.process_time() - own_cpu,  # the hook's server and the subscriber, in this process
        "calling": summary.get("calling"),
        "reporting": {k: summary["reporting"][k] for k in ("reports", "sent")} if "reporting" in summary else None,
    }
    if subscriber and receiver and hook is not None:
        time.sleep(0.2)  # the last acknowledged messages reach the subscriber
        subscriber.close()
        receiver.__exit__()
        row["subscriber_calls"] = len(subscriber.messages)
        row["hook_calls"] = sum(body["event"] == "call" for body in hook)
        key = "paced at 30 fps" if realtime else "read as fast as it goes"
        if name == "calls":
            for what, values in latencies(subscriber, hook, log).items():
                lat[key].setdefault(what, []).extend(values)
    return row


def median(rows: list[dict], key: str) -> float:
    return float(np.median([r[key] for r in rows]))


def report(args, result: dict) -> None:
    rows = result["rows"]
    fps = {name: median(rows[name], "fps") for name in PHASES}
    print(
        f"\nMobileNetV2 int8 @ 224, {args.frames} frames of 640x480 MJPG read as fast as they go, a new image every "
        f"{args.segment} frames, {args.threads} threads, median of {args.rounds} alternating rounds; "
        f"{os.cpu_count()} CPUs ({cpu_name()})"
    )
    print(
        f"{'edge run':<20}{'fps':>8}{'ratio':>8}{'against':>18}{'target':>8}{'CPU ms/frame':>14}{'calls':>7}"
        f"{'subscriber':>11}{'hook':>6}{'broker CPU s':>13}{'hook+sub CPU s':>15}"
    )
    against = {"calls": "no calls", "reporting": "no calls", "reporting + calls": "reporting"}
    for name in PHASES:
        base = against.get(name)
        ratio = fps[name] / fps[base] if base else 1.0
        target = "" if name == "reporting" or not base else ("PASS" if ratio >= 0.99 else "FAIL")
        calling = rows[name][-1]["calling"] or {}
        print(
            f"{name:<20}{fps[name]:>8.1f}{ratio:>8.3f}{base or '':>18}{target:>8}"
            f"{median(rows[name], 'cpu_ms_per_frame'):>14.2f}{calling.get('calls', ''):>7}"
            f"{rows[name][-1].get('subscriber_calls', ''):>11}{rows[name][-1].get('hook_calls', ''):>6}"
            f"{median(rows[name], 'broker_cpu_s'):>13.2f}{median(rows[name], 'bench_cpu_s'):>15.2f}"
        )
    print(f"reporting + calls against no calls: {fps['reporting + calls'] / fps['no calls']:.3f}")
    read_ms = result["health_read_ms"]
    print(
        f"edge.health's read: {read_ms:.3f} ms, once a window: at --report-every 0.2 that is "
        f"{read_ms * 5 / 10:.3f}% of the frame loop's time (target: with the calls, <= 1%)"
    )
    print(f"\n{'latency, ms':<48}{'calls':>7}{'p50':>8}{'p99':>8}{'max':>8}{'target':>8}")
    for source, found in result["latency_ms"].items():
        for what, values in found.items():
            target = ""
            if what == "frame → subscriber":
                target = "PASS" if np.percentile(values, 99) <= 50 else "FAIL"
            p50, p99 = np.percentile(values, 50), np.percentile(values, 99)
            print(f"{source + ': ' + what:<48}{len(values):>7}{p50:>8.1f}{p99:>8.1f}{max(values):>8.1f}{target:>8}")
    paced = result["paced"]
    print(f"paced: {median(paced, 'fps'):.1f} fps, {median(paced, 'frames'):.0f} frames a run")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--segment", type=int, default=3, help="frames each image is held: a call each")
    parser.add_argument("--paced-seconds", type=float, default=8.0, help="of the calls played at 30 fps, a round")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    quiet()  # before the model is built too: converting it takes both cores for a minute
    print(f"load average at start: {load()}", flush=True)
    with tempfile.TemporaryDirectory() as work:
        result = measure(args, Path(work))
    print(f"load average after: {result['load_after']}")
    report(args, result)
    if args.json:
        args.json.write_text(json.dumps({**result, "cpu": cpu_name(), "args": vars(args) | {"json": None}}, indent=2))


if __name__ == "__main__":
    main()
