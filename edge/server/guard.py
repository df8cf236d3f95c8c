"""A rollout's guard: whether the canaries do as well under a new model version as before it, judged on what
their reports say, with the reason in numbers when they do not.

What is compared, over the canaries' reports (`measure`): the mean top-1 score (a model fed the wrong
preprocessing is unsure of everything), field accuracy where a truth was given (a model whose labels are
permuted is sure, and wrong), the median inference latency, and the share of judged windows at drift against
the model's own fingerprint. "Before" is the canaries' own reports under the model they ran before the rollout,
moved by the change the rest of the fleet saw over the watch (`expected`: dusk lowers every device's top-1, and
that is not the new version's doing); a canary with none is compared with the rest of the fleet over the watch.
"""

from dataclasses import asdict, dataclass, fields
from statistics import median
from typing import Any

from edge.errors import OptionError, close_matches, finite


@dataclass(frozen=True)
class Guard:
    """The limits a new version must hold on the canaries; a metric without data on either side is not judged."""

    top1_drop: float = 0.10  # mean top-1 score: at most this much lower
    accuracy_drop: float = 0.05  # field accuracy, where truth exists: at most this much lower
    latency_ratio: float = 1.5  # median inference p50: at most this many times the one before
    drift_share: float = 0.5  # windows at drift: at most this share, and no more than 0.25 over before
    min_frames: int = 100  # frames under the new version needed to judge at all

    def __post_init__(self):
        for spec in fields(self):
            value = getattr(self, spec.name)
            if not (finite(value) and value >= 0) or (spec.name in ("latency_ratio",) and value < 1):
                raise OptionError(
                    f"--guard {spec.name}={value}: give a number at least "
                    f"{1 if spec.name == 'latency_ratio' else 0}, e.g. {spec.default}"
                )

    def to_json(self) -> dict:
        return asdict(self)


def parse_guard(text: str | None) -> Guard:
    """--guard "top1_drop=0.2,latency_ratio=2": the defaults for what is not named."""
    if not text:
        return Guard()
    known = {spec.name: spec.type for spec in fields(Guard)}
    given: dict[str, Any] = {}
    for part in text.split(","):
        name, _, value = part.strip().partition("=")
        if name not in known:
            close = close_matches(name, known)
            raise OptionError(
                f"--guard: no limit '{name}'"
                + (f": did you mean {' or '.join(close)}?" if close else f"; the limits: {', '.join(known)}")
            )
        try:
            given[name] = int(value) if name == "min_frames" else float(value)
        except ValueError:
            raise OptionError(f"--guard {part.strip()}: give NAME=NUMBER, e.g. top1_drop=0.1") from None
    return Guard(**given)


def measure(reports: list[dict]) -> dict:
    """What the guard compares, over a set of (checked) reports."""
    frames = sum(r["frames"] for r in reports)
    scored = [(r["top1_mean"], r["frames"]) for r in reports if r.get("top1_mean") is not None]
    evaluated = sum(r["evaluated"] for r in reports)
    latencies = [r["latency_ms"]["inference"].get("p50") for r in reports]
    judged = [r["drift"]["level"] for r in reports if r.get("drift") and r["drift"]["level"] != "too few"]
    weight = sum(n for _, n in scored)
    return {
        "reports": len(reports),
        "frames": frames,
        "top1_mean": sum(v * n for v, n in scored) / weight if weight else None,
        "accuracy": sum(r["accuracy"] * r["evaluated"] for r in reports) / evaluated if evaluated else None,
        "evaluated": evaluated,
        "latency_p50_ms": median([v for v in latencies if v is not None])
        if any(v is not None for v in latencies)
        else None,
        "drift_share": judged.count("drift") / len(judged) if judged else None,
    }


def expected(before: dict, then: dict, now: dict, min_frames: int) -> dict:
    """`before`, moved by the change from `then` to `now` (the rest of the fleet, on the version it runs, before
    the rollout and over the watch): by the difference for a score or a share, by the ratio for latency. A
    metric the rest does not measure on both sides, over at least `min_frames` frames each, stays as it was;
    `moved` keeps what was before and the rest's two values, for the reason."""
    if min(then["frames"], now["frames"]) < min_frames:
        return before
    shown, moved = dict(before), {}
    for key in ("top1_mean", "accuracy", "drift_share", "latency_p50_ms"):
        if None in (before[key], then[key], now[key]) or (key == "latency_p50_ms" and not then[key]):
            continue
        changed = before[key] * now[key] / then[key] if key == "latency_p50_ms" else before[key] + now[key] - then[key]
        shown[key] = changed if key == "latency_p50_ms" else min(1.0, max(0.0, changed))
        moved[key] = (before[key], then[key], now[key])
    return {**shown, "moved": moved}


def verdict(guard: Guard, new: dict, before: dict, version: str) -> list[str]:
    """The reasons the new version fails the guard, in numbers; none: it holds."""
    if new["frames"] < guard.min_frames:
        return [
            f"the devices judged reported {new['frames']} frames under {version} in the watch, fewer than "
            f"the {guard.min_frames} needed to judge it"
        ]
    reasons = []

    def both(key):
        return new[key] is not None and before[key] is not None

    def against(key, form):
        """The value a metric is held to, in words: what it was before, or what that became with the fleet."""
        if key not in before.get("moved", {}):
            return f"{form.format(before[key])} before"
        was, then, now = before["moved"][key]
        return (
            f"{form.format(before[key])} expected ({form.format(was)} before, as the rest of the fleet went "
            f"from {form.format(then)} to {form.format(now)})"
        )

    if both("top1_mean") and before["top1_mean"] - new["top1_mean"] > guard.top1_drop:
        reasons.append(
            f"mean top-1 score {new['top1_mean']:.3f} under {version} against "
            f"{against('top1_mean', '{:.3f}')} (a drop over {guard.top1_drop})"
        )
    if both("accuracy") and before["accuracy"] - new["accuracy"] > guard.accuracy_drop:
        reasons.append(
            f"field accuracy {new['accuracy']:.3f} on {new['evaluated']} frames under {version} against "
            f"{against('accuracy', '{:.3f}')} (a drop over {guard.accuracy_drop})"
        )
    if both("latency_p50_ms") and new["latency_p50_ms"] > guard.latency_ratio * before["latency_p50_ms"]:
        reasons.append(
            f"median inference p50 {new['latency_p50_ms']:.2f} ms under {version} against "
            f"{against('latency_p50_ms', '{:.2f} ms')} (over {guard.latency_ratio}x)"
        )
    drift, was = new["drift_share"], before["drift_share"] or 0.0
    if drift is not None and (drift > guard.drift_share or drift > was + 0.25):
        reasons.append(
            f"{drift:.0%} of the judged windows at drift under {version} against "
            f"{against('drift_share', '{:.0%}') if before['drift_share'] is not None else '0% before'}"
        )
    return reasons
