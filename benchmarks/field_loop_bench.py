"""Does closing the loop pay: the frames a device collects during a drift, labelled and added to training,
against the model before them?

    python benchmarks/field_loop_bench.py --work DIR          # about 12 min on 2 cores
    python benchmarks/field_loop_bench.py --work DIR --changes "half the light" --seeds 0 1 2
    python benchmarks/field_loop_bench.py --work DIR --rules uncertain uncertain:0.2

The scenario (tests/field_loop.py): MobileNetV2 alpha 0.35 at 48 px, int8, from scratch on the first 100
scans of each digit 0-3 (the tests' e2e recipe). A camera then sees the next 40 scans of each digit under a
change, 160 frames in a seeded random order. `edge run` reports its drift (without truth) to a real
`edge serve` and collects by a rule: uncertain (no truth needed; --uncertain MARGIN, or the model's own from
its fingerprint), every:4 (a sample), or
wrong (the device knows the truth: --truth-schedule). Every collected frame is labelled through the host's API
from the scenario's truth, `edge frames export` writes them, and `edge convert --data TRAIN --data EXPORT`
trains again with the same recipe and seed. Both models are scored on the remaining scans (41-43 a digit),
under the change (drifted) and as they are (unchanged). "all 160" is the ceiling: every camera frame labelled.
The rate cap is raised to 10,000 an hour: the scenario's minutes stand for a device's days.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import edge  # noqa: E402
from edge.render import table  # noqa: E402
from edge.server import store  # noqa: E402
from edge.version import cpu_name  # noqa: E402
from tests.field_loop import CHANGES, convert, label_from_truth, scenario  # noqa: E402
from tests.server import Server  # noqa: E402

RULES = ("uncertain", "every:4", "wrong")


def one(work: Path, change: str, seed: int, rules=RULES) -> list[dict]:
    s = scenario(work, change, seed)
    convert(s["train"], work / "before", seed)

    def score(model):
        return {test: edge.evaluate(model, s[test]).report.accuracy for test in ("drifted", "test")}

    before = score(work / "before")
    schedule = work / "truth.json"
    schedule.write_text(
        json.dumps([{"start_frame": i, "end_frame": i, "label": label} for i, label in enumerate(s["truth"])])
    )
    db = work / "edge.db"
    tokens = {rule: store.create_token(store.open_db(db), f"pi-{n}") for n, rule in enumerate(rules)}
    server = Server(db).start()
    rows = []
    try:
        for n, rule in enumerate(rules):
            device = f"pi-{n}"
            summary = edge.run(
                work / "before",
                str(s["camera"]),
                report_to=server.url,
                token=tokens[rule],
                device_id=device,
                outbox=work / f"outbox-{n}.db",
                collect=rule,
                collect_max_per_hour=10_000,
                collect_store=work / f"frames-{n}.db",
                truth_schedule=schedule if rule == "wrong" else None,
                drift_min_frames=100,
            )
            labelled = label_from_truth(server, device, s["truth"])
            export = edge.export_frames(db, work / f"field-{n}", device)
            convert([s["train"], work / f"field-{n}"], work / f"after-{n}", seed)
            rows.append(
                {
                    "change": change,
                    "seed": seed,
                    "rule": rule,
                    "collected": labelled,
                    "drift": (summary.drift or {})["level"],
                    "classes": export["classes"],
                    "before": before,
                    "after": score(work / f"after-{n}"),
                }
            )
    finally:
        server.stop()
    convert([s["train"], work / "field-changed"], work / "after-all", seed)
    rows.append(
        {
            "change": change,
            "seed": seed,
            "rule": "all 160",
            "collected": len(s["truth"]),
            "drift": "",
            "classes": {},
            "before": before,
            "after": score(work / "after-all"),
        }
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, help="Folder for the scenarios [a temporary one].")
    parser.add_argument("--changes", nargs="+", default=list(CHANGES), choices=list(CHANGES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--rules", nargs="+", default=list(RULES), help="--collect rules to compare")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="field-loop-"))
    rows = []
    for change in args.changes:
        for seed in args.seeds:
            rows += one(work / f"{change.replace(' ', '-')}-{seed}", change, seed, args.rules)
            print(f"done: {change}, seed {seed}", file=sys.stderr, flush=True)
    print(f"CPU: {cpu_name()}; work in {work}")
    print(
        table(
            [
                (
                    "change",
                    "seed",
                    "rule",
                    "frames labelled",
                    "drift seen",
                    "drifted: before",
                    "after",
                    "gain",
                    "unchanged: before",
                    "after",
                )
            ]
            + [
                (
                    r["change"],
                    str(r["seed"]),
                    r["rule"],
                    str(r["collected"]),
                    r["drift"],
                    f"{r['before']['drifted']:.3f}",
                    f"{r['after']['drifted']:.3f}",
                    f"{r['after']['drifted'] - r['before']['drifted']:+.3f}",
                    f"{r['before']['test']:.3f}",
                    f"{r['after']['test']:.3f}",
                )
                for r in rows
            ]
        )
    )
    (work / "field_loop.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
