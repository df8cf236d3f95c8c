"""A rollout on loopback: how long a good version takes to reach every device, what a swap costs a camera's
frames, what is downloaded, how long a bad version runs before the guard rolls it back, and what following
costs the frame loop.

    python benchmarks/rollout_bench.py                        # about 4 min on 2 cores
    python benchmarks/rollout_bench.py --devices 10 --watch 20

1. A bundle made as the tests' e2e (MobileNetV2 alpha 0.35 at 48 px, full int8, from scratch on scikit-learn's
   digit scans 0-3), pushed as digits@1; digits@2 and @3, the same network in model files of their own (retrained
   models, as far as sha256 can tell); digits@4, digits@3 with its labels permuted (sure of itself, and wrong).
2. A real `edge serve`, and --devices `edge run --realtime` processes on a 30 fps video of the scans, with their
   truth, reporting every --every s and following the host's versions (--follow-models); each started again
   --restart s after it ends, as the unit `edge package` writes restarts it (Restart=always): a version with
   other labels, as digits@3 has, is made active and the run ends, so that its service starts on it.
3. `edge rollout start digits@2 --canary 1 --watch W`, then digits@3 the same way: the seconds from the start to
   every device reporting under it (and from the promotion); each swap's pause in the frame loop and the frames
   a swap lost (a gap in the frame numbers of a real-time source); the bytes downloaded against the versions'
   sizes times the devices that took them.
4. Then digits@4 the same way: how long it ran on how many devices before the guard rolled it back.
5. The frame loop's cost: `edge run` on the video as fast as it goes, reporting, with --follow-models and
   without, and without again (the same run twice: how far two equal runs differ on this machine), each kind
   first in every third round, median of --rounds: the frames a second, and the ratios.

    python benchmarks/rollout_bench.py --loop-only --frames 9000 --rounds 12   # 5 only, on a longer video
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import edge  # noqa: E402
from edge.converter.demo import write_digits  # noqa: E402
from edge.render import table  # noqa: E402
from edge.version import cpu_name  # noqa: E402
from tests.bundles import E2E_OPTIONS, padded_copy, rewritten  # noqa: E402
from tests.fleet import FPS, Service, device_args, video, wait  # noqa: E402
from tests.server import Server, token  # noqa: E402


def build(tmp: Path) -> tuple[Path, list[Path]]:
    """The digits, and the four bundles."""
    digits = write_digits(tmp / "digits", per_class=170, size=48)
    v1 = Path(
        edge.convert(
            "mobilenetv2",
            digits,
            tmp / "v1",
            **E2E_OPTIONS,
        ).bundle
    )
    v2 = padded_copy(v1, tmp / "v2")
    v3 = padded_copy(v2, tmp / "v3")
    labels = json.loads((v3 / "edge.json").read_text())["labels"]
    v4 = rewritten(v3, tmp / "v4", labels=labels[1:] + labels[:1]).path
    return digits, [v1, v2, v3, v4]


def stage_time(rollout: dict, word: str) -> float:
    """When the event whose text starts with `word` happened, in seconds after the rollout started."""
    return next(h["at"] for h in rollout["history"] if h["event"].startswith(word)) - rollout["started"]


def swap_costs(log: Path, summary: dict) -> list[tuple[float, int]]:
    """(the loop's pause, frames lost) for each swap of a run: the frame numbers of a real-time source skip
    the frames it passed over."""
    frames = [json.loads(line)["frame"] for line in log.read_text().splitlines()]
    costs = []
    for swap in summary["following"]["swaps"]:
        at = frames.index(swap["frame"])
        costs.append((swap["ms"], frames[at] - frames[at - 1] - 1 if at else 0))
    return costs


def loop_cost(bundle: Path, camera: Path, tmp: Path, server, secret: str, public: Path, rounds: int) -> dict:
    fps: dict[str, list[float]] = {"without": [], "with": [], "without, again": []}
    following = device_args(tmp, "pi-cost", server, secret, public, 1.0)
    kinds = [
        ("without", following[: following.index("--follow-models")]),
        ("with", following),
        ("without, again", following[: following.index("--follow-models")]),
    ]
    for n in range(rounds):
        for kind, args in kinds[n % 3 :] + kinds[: n % 3]:  # each first in every third round: no order effect
            out = subprocess.run(
                [sys.executable, "-m", "edge.cli", "run", str(bundle), "--source", str(camera), *args, "--json", "-"],
                capture_output=True,
                text=True,
                check=True,
            )
            fps[kind].append(json.loads(out.stdout)["fps"])
    return {kind: statistics.median(values) for kind, values in fps.items()}


def loop_rows(fps: dict) -> list[tuple[str, str]]:
    return [
        ("frame loop, fps without following", f"{fps['without']:.0f}"),
        ("frame loop, fps with --follow-models", f"{fps['with']:.0f}"),
        ("ratio (with / without)", f"{fps['with'] / fps['without']:.3f}"),
        ("ratio of two equal runs (without again / without)", f"{fps['without, again'] / fps['without']:.3f}"),
    ]


def loop_only(a, tmp: Path) -> None:
    """Step 5 alone, on a video of --frames frames."""
    digits, versions = build(tmp)
    camera, _ = video(digits, tmp, a.frames / FPS)
    server = Server(tmp / "edge.db").start()
    try:
        keys = edge.create_keys(tmp / "keys")
        fps = loop_cost(
            versions[0], camera, tmp, server, token(tmp / "edge.db", "pi-cost"), Path(keys["public"]), a.rounds
        )
    finally:
        server.stop()
    print(f"following's cost to the frame loop: {a.frames} frames a run, {a.rounds} rounds; CPU: {cpu_name()}\n")
    print(table([("", "value"), *loop_rows(fps)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=4)
    parser.add_argument("--watch", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=2.0, help="seconds a report covers")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--restart", type=float, default=1.0, help="seconds before a device's run starts again")
    parser.add_argument("--loop-only", action="store_true", help="measure only following's cost to the frame loop")
    parser.add_argument("--frames", type=int, default=9000, help="frames a run of --loop-only classifies")
    a = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rollout-bench-"))
    if a.loop_only:
        loop_only(a, tmp)
        return
    digits, versions = build(tmp)
    seconds = 3 * a.watch + 12 * a.every + 40
    camera, truth = video(digits, tmp, seconds)
    server = Server(tmp / "edge.db").start()
    try:
        publisher = token(tmp / "edge.db", "ci", "--publisher")
        keys = edge.create_keys(tmp / "keys")
        for bundle in versions:
            edge.push_model(bundle, "digits", server.url, publisher, keys["private"])
        names = [f"pi-{n}" for n in range(a.devices)]
        services = []
        for name in names:
            args = device_args(tmp, name, server, token(tmp / "edge.db", name), Path(keys["public"]), a.every)
            command = [
                sys.executable,
                "-m",
                "edge.cli",
                "run",
                str(versions[0]),
                "--source",
                str(camera),
                "--realtime",
                "--truth-schedule",
                str(truth),
                *args,
            ]
            services.append(Service(name, command, tmp, a.restart))
            services[-1].start()
        time.sleep(3 * a.every)  # every device has reported: it can join
        good = []
        for version in ("digits@2", "digits@3"):
            edge.start_rollout(version, server.url, publisher, canary=1, watch=a.watch)
            good.append(wait(server, publisher, "digits", a.watch + 30 * a.every))
        edge.start_rollout("digits@4", server.url, publisher, canary=1, watch=a.watch)
        bad = wait(server, publisher, "digits", a.watch + 30 * a.every)
        time.sleep(2 * a.every)  # the canary back on digits@2
        runs = [run for service in services for run in service.stop()]
        costs = [c for summary, log in runs for c in swap_costs(log, summary)]
        fps = loop_cost(
            versions[0], camera, tmp, server, token(tmp / "edge.db", "pi-cost"), Path(keys["public"]), a.rounds
        )
    finally:
        server.stop()
    sizes = [sum(p.stat().st_size for p in bundle.iterdir()) for bundle in versions]
    taken = (sizes[1] + sizes[2]) * a.devices + sizes[3] * len(bad["canaries"])  # each version a device took
    downloaded = sum(summary["following"]["downloaded_bytes"] for summary, _ in runs)
    pauses, lost = [c[0] for c in costs], [c[1] for c in costs]
    p99 = statistics.quantiles(pauses, n=100, method="inclusive")[98] if len(pauses) >= 2 else None
    print(
        f"rollout on loopback: {a.devices} devices at {FPS:g} fps (real time), reports every {a.every:g} s, "
        f"watch {a.watch:g} s; CPU: {cpu_name()}\n"
    )
    whole = [stage_time(g, "done") for g in good]
    promoted = [stage_time(g, "done") - stage_time(g, "the guard held") for g in good]
    # When each device began to run each good version (its swap), after the promotion: the host learns it
    # from the device's next report, a report interval later.
    swapped = [
        max(s["at"] for summary, _ in runs for s in summary["following"]["swaps"] if s["to"] == f"digits@{n}")
        - (g["started"] + stage_time(g, "the guard held"))
        for n, g in zip((2, 3), good, strict=True)
    ]
    print(
        table(
            [
                ("", "value"),
                ("good versions: start to every device on it, s", " / ".join(f"{w:.1f}" for w in whole)),
                ("good versions: promotion to every device on it, s", " / ".join(f"{p:.1f}" for p in promoted)),
                ("  in report intervals", " / ".join(f"{p / a.every:.1f}" for p in promoted)),
                ("good versions: promotion to the last device's swap, s", " / ".join(f"{w:.1f}" for w in swapped)),
                ("  in report intervals", " / ".join(f"{w / a.every:.1f}" for w in swapped)),
                ("runs (restarts included) / swaps in a run", f"{len(runs)} / {len(costs)}"),
                ("swap pause in the frame loop, p50 ms", f"{statistics.median(pauses):.2f}"),
                ("swap pause, p99 ms (a frame interval: 33.3)", f"{p99:.2f}" if p99 is not None else "-"),
                ("swap pause, max ms", f"{max(pauses):.2f}"),
                ("frames lost at a swap, max", str(max(lost))),
                ("bytes downloaded / bytes of the versions taken", f"{downloaded / taken:.2f}"),
                ("bad version: ran before the rollback, s", f"{stage_time(bad, 'failed'):.1f}"),
                ("bad version: devices it ran on", str(len(bad["canaries"]))),
                *loop_rows(fps),
            ]
        )
    )
    print(f"\nthe bad version's rollback: {bad['reason']}")


if __name__ == "__main__":
    main()
