"""Is a drop in accuracy real, or one image's chance? Two models called on the same images differ only on the
images one gets right and the other wrong: `lost` (the reference right, the other wrong) and `gained`. Given
those m discordant images, each is a loss with probability q, and the drop is m (2q - 1) / n. McNemar's exact
test asks whether `lost` of m is too many for q at the budget's value: a drop over the budget counts only when
the images show it (p < ALPHA). The drop's interval is Agresti and Min's for paired proportions.

On 120 validation images a budget of 0.01 is about one image: a drop of two or three images over it is what
chance gives, and the test says so instead of keeping half a network in float for it.
"""

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

from edge.eval.baseline import tail

ALPHA = 0.05  # one-sided: below this chance of so many losses at the budget, the drop is over it
LEVEL = 0.95  # the drop's interval
SLACK = 1e-9  # accuracies are counts over a total: a drop of exactly the budget holds whatever rounding says


@dataclass(frozen=True)
class Paired:
    """A drop judged against a budget on n images: what was measured, its interval, what the images show."""

    n: int
    lost: int  # images the reference got right and the other wrong
    gained: int  # the other way round
    drop: float  # (lost - gained) / n
    max_drop: float
    low: float  # the drop's LEVEL interval
    high: float
    p_value: float  # chance of `lost` or more losses of the discordant images were the drop exactly max_drop
    tested: bool  # judged by the test; False: every image counts as measured
    over: bool  # over the budget: measured so, and (tested) shown so

    def to_json(self) -> dict:
        figures = {key: round(v, 6) if isinstance(v, float) else v for key, v in asdict(self).items()}
        return {**figures, "says": self.says()}

    def says(self) -> str:
        """One line: the drop, its interval, and what the images can and cannot tell of the budget."""
        measured = (
            f"drop {self.drop:.4f} ({self.lost} lost, {self.gained} gained of {self.n} images; {LEVEL:.0%} interval "
            f"{self.low:.4f} to {self.high:.4f})"
        )
        if self.drop <= self.max_drop + SLACK:
            return f"{measured}: within --max-drop {self.max_drop}"
        if self.over:
            shown = f", and {self.n} images show it (p = {self.p_value:.2g})" if self.tested else ""
            return f"{measured}: more than --max-drop {self.max_drop}{shown}"
        return (
            f"{measured}: more than --max-drop {self.max_drop} as measured, but {self.n} images cannot show it is (p = "
            f"{self.p_value:.2g}): the drop may be up to {self.high:.4f}; more validation images tell it closer"
        )


def judge(truth, reference_pred, pred, max_drop: float, tested: bool = True, drop: float | None = None) -> Paired:
    """`pred` against `reference_pred` on the images of `truth`, to a budget of `max_drop`; `drop`: the drop as
    the caller measures it (against a reference accuracy of its own), else from these images."""
    truth, reference_pred, pred = (np.asarray(a) for a in (truth, reference_pred, pred))
    reference_right, right = reference_pred == truth, pred == truth
    n = len(truth)
    lost, gained = int(np.sum(reference_right & ~right)), int(np.sum(~reference_right & right))
    measured = (lost - gained) / n if drop is None else drop
    m = lost + gained
    p_value = _losses_p(lost, m, n, max_drop)
    low, high = _interval(lost, gained, n)
    over = measured > max_drop + SLACK and (not tested or p_value < ALPHA)
    return Paired(n, lost, gained, measured, max_drop, low, high, p_value, tested, over)


def _interval(lost: int, gained: int, n: int) -> tuple[float, float]:
    """The drop's LEVEL interval, Agresti and Min's (2005): Wald's with half an image added to each cell of the
    2x2 table; it counts the discordant images as random too (an exact interval given them cannot reach past
    them: three losses of three would read "at most 3 images")."""
    b, c, total = lost + 0.5, gained + 0.5, n + 2
    z = NormalDist().inv_cdf(1 - (1 - LEVEL) / 2)
    d, spread = (b - c) / total, z * math.sqrt(b + c - (b - c) ** 2 / total) / total
    return d - spread, d + spread


def _losses_p(lost: int, m: int, n: int, max_drop: float) -> float:
    """P(lost or more of m are losses) were the drop exactly max_drop: q = (1 + n max_drop / m) / 2."""
    q = (1 + n * max_drop / m) / 2 if m else 1.0
    return 1.0 if q >= 1 else tail(lost, m, q)  # q >= 1: m images cannot lose more than the budget
