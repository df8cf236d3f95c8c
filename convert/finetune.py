"""How much of a pretrained backbone to fine-tune, chosen from the data (`--fine-tune-layers auto`).

The rule of thumb for transfer learning: little data, or data the frozen features already separate, unfreeze
less (more trainable weights than images overfit, and good features have little to gain); much data, or data
unlike the pretraining's, unfreeze more, at a lower learning rate the more is unfrozen, so the first steps do
not wreck what was learned. Images per class choose a step of STEPS; the linear probe (the head trained on
the frozen backbone, which the first phase is) moves it one step down when it already separates the classes,
one step up when it separates them poorly.
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    share: float  # of the backbone's layers, from the top
    lr_divisor: float  # the fine-tuning learning rate is --lr divided by this


STEPS = (Step(0.0, 10), Step(0.15, 10), Step(0.3, 10), Step(0.5, 30), Step(1.0, 100))
BY_IMAGES = ((20, 1), (100, 2), (500, 3), (math.inf, 4))  # under so many training images a class: that step
PROBE_GOOD = 0.95  # a linear probe this accurate: one step less
PROBE_POOR = 0.70  # one this poor: one step more


@dataclass(frozen=True)
class FineTuning:
    layers: int  # top backbone layers unfrozen
    of: int  # the backbone's layers
    lr: float
    why: str
    images_per_class: int | None = None  # what chose it, when auto did
    probe: float | None = None


def choose_fine_tuning(images_per_class: int, probe: float | None, n_layers: int, lr: float) -> FineTuning:
    """The step for `images_per_class` (the smallest class's training images), moved by the linear probe's
    validation accuracy (None when there was no head phase)."""
    index = next(i for limit, i in BY_IMAGES if images_per_class < limit)
    why = [f"{images_per_class} training images in the smallest class"]
    if probe is not None and probe >= PROBE_GOOD and index > 0:
        index -= 1
        why.append(f"the frozen features already separate the classes (linear probe {probe:.2f} >= {PROBE_GOOD})")
    elif probe is not None and probe < PROBE_POOR and index < len(STEPS) - 1:
        index += 1
        why.append(f"the frozen features separate the classes poorly (linear probe {probe:.2f} < {PROBE_POOR})")
    elif probe is not None:
        why.append(f"linear probe {probe:.2f}")
    step = STEPS[index]
    layers = round(step.share * n_layers)
    return FineTuning(
        layers,
        n_layers,
        lr / step.lr_divisor,
        f"{'; '.join(why)}: unfreeze the top {step.share:.0%} of the backbone at lr/{step.lr_divisor:g}",
        images_per_class,
        probe,
    )
