"""Which devices train, and the strategy over them: every visible GPU; with none, the logical CPU devices (one,
unless tf.config.set_logical_device_configuration made more before TensorFlow started). Two or more train as
mirrors (tf.distribute.MirroredStrategy): each takes --batch-size images a step and their gradients are averaged,
so the global batch is --batch-size times the devices, and an epoch takes fewer steps.

Fewer steps at the same learning rate train less far: two CPU devices at lr 1e-3 reached 0.873 validation
accuracy on the digit scans where one reached 0.946 (3 seeds each). The rate grows with the square root of the
devices, the rule for Adam (Malladi et al., 2022): two at 1.41e-3 reached 0.934, within the seeds' spread
(0.926-0.978; benchmarks/distribute_bench.py)."""

import math
from dataclasses import dataclass

from edge.converter.tfkeras import tf


@dataclass(frozen=True)
class Devices:
    names: tuple[str, ...]  # short names, "/gpu:0"
    strategy: tf.distribute.Strategy  # build, compile and fit in its scope()

    @property
    def kind(self) -> str:
        return "MirroredStrategy" if len(self.names) > 1 else "default strategy"

    def describe(self, batch: int) -> str:
        """One line for the log: which devices train, and the batch each takes."""
        n = len(self.names)
        each = f"global batch {batch * n} = {batch} a device" if n > 1 else f"batch {batch}"
        return f"training on {n} device{'s' if n > 1 else ''}: {', '.join(self.names)} ({self.kind}, {each})"

    def record(self, batch: int) -> dict:
        """What the training report keeps of them."""
        return {
            "names": list(self.names),
            "strategy": self.kind,
            "batch_per_device": batch,
            "global_batch": batch * len(self.names),
            "lr_scale": round(lr_scale(len(self.names)), 4),
        }


def lr_scale(replicas: int) -> float:
    """What the learning rate is multiplied by on `replicas` devices (see above)."""
    return math.sqrt(replicas)


def choose(gpus: list[str], cpus: list[str]) -> list[str]:
    """The GPUs if any, else the CPU devices: a GPU beside the CPU would only wait for it."""
    return gpus or cpus


def short_name(device: str) -> str:
    """'/job:localhost/replica:0/task:0/device:GPU:1' -> '/gpu:1'."""
    spec = tf.DeviceSpec.from_string(device)
    return f"/{spec.device_type.lower()}:{spec.device_index}"


def training_devices() -> Devices:
    names = choose(
        [d.name for d in tf.config.list_logical_devices("GPU")],
        [d.name for d in tf.config.list_logical_devices("CPU")],
    )
    strategy = tf.distribute.MirroredStrategy(names) if len(names) > 1 else tf.distribute.get_strategy()
    return Devices(tuple(short_name(n) for n in names), strategy)
