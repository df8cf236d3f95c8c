"""Quantize a Keras model for the IMX500 and convert it, inside the imx500 toolchain's venv (TensorFlow 2.15,
MCT, imxconv-tf): `edge.devices.imx500` runs this file with that venv's Python. It cannot import edge, which is
not installed there: everything comes and goes as files in one work folder.

In:  model.h5 (standard Keras layers only), calibration.npy and val_x.npy (N x H x W x 3 float32 pixels 0..255)
Out: network.keras (MCT's), sensor_scores.npy (the quantized model's on val_x), converted/ (imxconv-tf's
     packerOut.zip, dnnParams.xml, *_MemoryReport.json), result.json (versions, timings, the converter's output)
Lines starting with 'progress: ' are for the user.
"""

import argparse
import json
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np


def say(message: str) -> None:
    print(f"progress: {message}", flush=True)


# Keys newer Keras (edge's host: tf_keras 2.16+) writes into a layer's config that this one (2.15) refuses.
NEWER_KEYS = {"InputLayer": ("optional",)}


def load(path: Path):
    """The host's model file in this Keras: its config less the newer keys, then its weights."""
    import h5py
    import tensorflow as tf

    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
    for layer in config["config"]["layers"]:
        for key in NEWER_KEYS.get(layer["class_name"], ()):
            layer["config"].pop(key, None)
    model = tf.keras.models.model_from_json(json.dumps(config))
    model.load_weights(path)
    return model


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("work", type=Path)
    parser.add_argument("--tpc", default="1.0", help="edge-mdt-tpc's imx500 target platform version")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    work = args.work
    timings = {}

    started = time.perf_counter()
    import model_compression_toolkit as mct
    from edgemdt_tpc import get_target_platform_capabilities

    model = load(work / "model.h5")
    calibration = np.load(work / "calibration.npy")
    val_x = np.load(work / "val_x.npy")
    timings["load"] = time.perf_counter() - started

    # What this Keras computes from the host's file: the host compares it with its own scores, so a model that
    # changed on the way would show.
    np.save(work / "float_scores.npy", model.predict(val_x, batch_size=args.batch_size, verbose=0))

    def batches():
        for start in range(0, len(calibration), args.batch_size):
            yield [calibration[start : start + args.batch_size]]

    say(
        f"quantizing for the IMX500 with MCT {version('model-compression-toolkit')} (imx500 TPC {args.tpc}) on "
        f"{len(calibration)} calibration images"
    )
    started = time.perf_counter()
    tpc = get_target_platform_capabilities(tpc_version=args.tpc, device_type="imx500")
    quantized, _ = mct.ptq.keras_post_training_quantization(model, batches, target_platform_capabilities=tpc)
    timings["quantize"] = time.perf_counter() - started

    say(f"running the quantized model on {len(val_x)} validation images (the sensor's arithmetic, simulated)")
    started = time.perf_counter()
    np.save(work / "sensor_scores.npy", quantized.predict(val_x, batch_size=args.batch_size, verbose=0))
    timings["evaluate"] = time.perf_counter() - started

    exported = work / "network.keras"  # imxconv-tf names the network, and its memory report, after the file
    mct.exporter.keras_export_model(model=quantized, save_model_path=str(exported))

    say("converting with imxconv-tf (Java)")
    started = time.perf_counter()
    converted = work / "converted"
    program = Path(sys.executable).with_name("imxconv-tf")
    r = subprocess.run(
        [str(program), "-i", str(exported), "-o", str(converted), "--overwrite-output"],
        capture_output=True,
        text=True,
        check=False,
    )
    timings["convert"] = time.perf_counter() - started
    result = {
        "versions": {
            name: version(name)
            for name in ("tensorflow", "numpy", "model-compression-toolkit", "edge-mdt-tpc", "imx500-converter")
        },
        "tpc": args.tpc,
        "calibration_images": int(len(calibration)),
        "seconds": {step: round(s, 2) for step, s in timings.items()},
        "converter": {"exit": r.returncode, "output": (r.stdout + r.stderr)[-20_000:]},
    }
    (work / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
