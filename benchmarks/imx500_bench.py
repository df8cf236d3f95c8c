"""What does the AI Camera's sensor keep of the model? MobileNetV2 (96 px, from scratch on scikit-learn's
digit scans, 8 epochs) converted with --device rpi-ai-camera: the validation accuracy of the Keras
model (the baseline, measured in the same run), of the MCT-quantized network (the sensor's arithmetic, simulated
on the host) and of the int8 TFLite file, each as a ratio to Keras; the converter's memory report; and where the
conversion's time went.

    python benchmarks/imx500_bench.py           # ~10 min on 2 cores; needs: edge devices toolchain install imx500
    python benchmarks/imx500_bench.py --alpha 0.35

Target: the sensor's accuracy within 0.01 of Keras' (--max-drop's default), and the network within the sensor's 8 MB.
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--input-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()

    import edge
    from edge.converter.demo import write_digits
    from edge.render import table
    from edge.version import cpu_name

    with tempfile.TemporaryDirectory() as work:
        photos = write_digits(Path(work) / "photos")
        s = edge.convert(
            "mobilenetv2",
            photos,
            Path(work) / "bundle",
            device="rpi-ai-camera",
            weights="none",
            input_size=args.input_size,
            alpha=args.alpha,
            epochs=args.epochs,
            fine_tune_epochs=0,
            accept_drop=True,
        )
    m, sensor = s.metrics, s.imx500
    assert sensor, "an AI Camera conversion has its record"
    keras = m["keras"]["accuracy"]
    print(f"MobileNetV2 alpha {args.alpha}, {args.input_size} px, {m['n']} validation images; {cpu_name()}\n")
    print(
        table(
            [("model", "accuracy", "macro F1", "vs Keras", "agreement")]
            + [
                (name, f"{r['accuracy']:.4f}", f"{r['macro_f1']:.4f}", f"{r['accuracy'] / keras:.4f}", agreement)
                for name, r, agreement in (
                    ("keras (baseline)", m["keras"], "1.0000"),
                    ("imx500 (MCT, simulated)", m["imx500"], f"{m['imx500']['agreement']:.4f}"),
                    ("tflite int8", m["tflite"], f"{m['agreement']:.4f}"),
                )
            ]
        )
    )
    memory = sensor["memory"]
    print(
        f"\nsensor memory: {memory['used_bytes'] / 2**20:.2f} of {memory['chip_bytes'] / 2**20:.0f} MiB "
        f"({memory['utilization']}): model {memory['model_bytes'] / 2**20:.2f} MiB, runtime "
        f"{memory['runtime_bytes'] / 2**20:.2f} MiB; fits: {memory['fits']}; packerOut.zip "
        f"{sensor['packer']['bytes']:,} bytes"
    )
    print("toolchain seconds: " + ", ".join(f"{step} {seconds:g}" for step, seconds in sensor["seconds"].items()))
    print(f"whole conversion: {s.training['seconds']} s")
    drop = keras - m["imx500"]["accuracy"]
    print(f"\ntarget: sensor within 0.01 of Keras: {'held' if drop <= 0.01 else 'MISSED'} ({drop:+.4f})")


if __name__ == "__main__":
    main()
