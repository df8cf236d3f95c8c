"""What does plain int8 cost, on a model it really hurts? The accuracy, size and latency of float32 and
full-int8 (LiteRT Quantizer, `static_wi8_ai8`) files of the same model, on scans it never saw, timed in
turns as `edge bench` times them.

    python benchmarks/quantize_bench.py              # ~2 min

The model: a small CNN trained on the scanned digits at 48 px, then changed in a way that keeps every
float output the same and breaks per-tensor int8 activations. One channel of the first convolution is
scaled up 1000x (weights and bias), and the second convolution's weights from that channel down as much:
ReLU(a*x) = a*ReLU(x) for a > 0, so in float nothing changes. In int8 the first convolution's output
shares one scale across its channels, sized for the scaled one, and the other channels fall into its
lowest steps: the second convolution sees little but noise. The same CNN unscaled is the control.
An accuracy budget (`--max-drop`) has to win this back by keeping the first convolution's output in
higher precision.
"""
import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCALE = 1000.0


def train_cnn(train: Path, seed: int = 0):
    """A two-convolution CNN on the scans (pixels 0..255 in, scaled inside), trained to ~0.93."""
    from edge.converter.datasets import load_split
    from edge.converter.tfkeras import keras

    split = load_split(train, 48, val_split=0.01, seed=seed)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((48, 48, 3)),
        keras.layers.Rescaling(1 / 127.5, -1),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(4, activation="softmax"),
    ])
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(split.train_x.astype(np.float32), split.train_y, epochs=40, batch_size=32, verbose=0)
    return model, split


def add_outlier(model, scale: float = SCALE) -> int:
    """Scale one channel of the first convolution's output by `scale`, undone by the second convolution:
    the same function in float. The channel the second convolution weighs least, so what int8 loses is
    the rest. Returns the channel."""
    first, second = (layer for layer in model.layers if layer.__class__.__name__ == "Conv2D")
    (w1, b1), (w2, b2) = first.get_weights(), second.get_weights()
    channel = int(np.argmin(np.abs(w2).sum(axis=(0, 1, 3))))
    w1[..., channel] *= scale
    b1[channel] *= scale
    w2[:, :, channel, :] /= scale
    first.set_weights([w1, b1])
    second.set_weights([w2, b2])
    return channel


def measure(work: Path, rounds: int) -> dict:
    import edge
    from edge.converter.demo import write_digits
    from edge.converter.quantize import calibration_images, to_tflite

    train, unseen = write_digits(work / "train", per_class=120, size=48), write_digits(work / "unseen", per_class=None,
                                                                                        size=48, skip=120)
    (work / "labels.txt").write_text("0\n1\n2\n3\n")
    files = []
    model, split = train_cnn(train)
    calibration = calibration_images(split.train_x, 100, 0)
    for name in ("control", "outlier"):
        if name == "outlier":
            add_outlier(model)
        for quantize, io_type in (("float32", "float32"), ("int8", "uint8")):
            files.append(work / f"{name}-{quantize}.tflite")
            files[-1].write_bytes(to_tflite(model, quantize, io_type, calibration if quantize == "int8" else None))
    return edge.bench(files, unseen, labels=work / "labels.txt", rounds=rounds)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="latency rounds, the files in turns")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from edge import render

    work = Path(tempfile.mkdtemp())
    try:
        result = measure(work, args.rounds)
    finally:
        shutil.rmtree(work)
    print()
    print(render.bench_text(result))
    accuracy = {Path(r["name"]).name: r["accuracy"] for r in result["rows"]}
    for name in ("control", "outlier"):
        drop = accuracy[f"{name}-float32.tflite"] - accuracy[f"{name}-int8.tflite"]
        print(f"{name}: plain int8 drops {drop * 100:.1f} points" + (" (target for this model: >= 2)"
                                                                     if name == "outlier" else ""))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
