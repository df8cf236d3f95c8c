"""Training on two devices against one: validation accuracy and time of the same convert, seed for seed.

    python benchmarks/distribute_bench.py            # seeds 0-2
    python benchmarks/distribute_bench.py --seeds 0  # quick look

Each run is a process of its own, with TensorFlow's CPU split into N logical devices before it starts (the
way tests/test_distribute.py makes two without a GPU), so a row of two devices is tf.distribute.MirroredStrategy
over them: --batch-size images a device, the learning rate times sqrt(2) (convert/distribute.py). Data:
scikit-learn's real digit scans (4 classes, 544 training and 136 validation images), MobileNetV2 alpha 0.35 from
scratch at 32 px, float32 export (the file computes what Keras does). On one machine's CPU the two devices share
its cores: the time column shows the strategy's cost, not a GPU's gain.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OPTIONS = dict(weights="none", input_size=32, alpha=0.35, epochs=10, fine_tune_epochs=0, augment=False, batch_size=16)

CHILD = """
import json, sys
import tensorflow as tf
devices = int(sys.argv[1])
if devices > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
import edge
options = json.loads(sys.argv[2])
result = edge.convert("mobilenetv2", sys.argv[3], sys.argv[4], quantize="float32", allow_weak=True, **options)
print(json.dumps({"training": result.training, "accuracy": result.metrics["tflite"]["accuracy"]}))
"""


def run(devices: int, seed: int, data: Path, out: Path) -> dict:
    options = {**OPTIONS, "seed": seed}
    env = {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(devices), json.dumps(options), str(data), str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    )
    result = json.loads(done.stdout.splitlines()[-1])
    phase = result["training"]["phases"][0]
    return {
        "accuracy": result["accuracy"],
        "epochs": phase["epochs"],
        "seconds": phase["seconds"],
        "devices": result["training"]["devices"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    from edge.converter.demo import write_digits

    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        data = write_digits(Path(tmp) / "digits", per_class=170, size=48)
        print("| devices | global batch | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | epochs | s |")
        print("|---|---:|" + "---:|" * (len(seeds) + 3))
        for devices in (1, 2):
            runs = [run(devices, s, data, Path(tmp) / f"b{devices}-{s}") for s in seeds]
            accuracies = [r["accuracy"] for r in runs]
            print(
                f"| {devices} | {runs[0]['devices']['global_batch']} | "
                + " | ".join(f"{a:.4f}" for a in accuracies)
                + f" | {statistics.mean(accuracies):.4f} | {statistics.mean(r['epochs'] for r in runs):.1f} | "
                f"{statistics.mean(r['seconds'] for r in runs):.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
