"""The Raspberry Pi AI Camera (Sony IMX500): the network runs on the image sensor, and the Pi gets its output
tensor with each frame. Host side of `edge convert --device rpi-ai-camera`: the fine-tuned Keras model goes to
the imx500 toolchain (edge.devices.toolchains), which quantizes it with Sony's MCT for the sensor, runs the
quantized model on the validation images (the sensor's arithmetic, simulated), and converts it with imxconv-tf
to packerOut.zip. On the Pi, imx500-package (apt imx500-tools) turns that into network.rpk, the file picamera2
loads into the sensor.

The model crosses over as a Keras 2 HDF5 file of standard layers: edge's preprocessing layer becomes the 1x1
convolution it amounts to (an affine map of the pixels), so the sensor is fed RGB pixels 0..255 as they are and
normalises them in its first layer. Arrays cross as .npy files, results as JSON.
"""

import json
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.bundle import model_facts
from edge.devices.toolchains import locate, run_script
from edge.errors import EdgeError

TOOLCHAIN = "imx500"
SCRIPT = Path(__file__).with_name("imx500_convert.py")
TPC_VERSION = "1.0"  # edge-mdt-tpc's imx500 target platform: what imxconv-tf 3.18 was checked with here
PACKER = "packerOut.zip"
NETWORK = "network"  # the quantized model's file name: imxconv-tf names the network and its report after it
KEPT = ("dnnParams.xml", f"{NETWORK}_MemoryReport.json")  # beside packerOut.zip in the bundle
MATCH = 1e-4  # the toolchain's Keras must compute what the host's did, to this much a score
SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


@dataclass
class Converted:
    record: dict  # the manifest's "imx500" section
    scores: np.ndarray  # the quantized model's on the validation images
    files: dict  # name -> bytes, for the bundle


def check_ready(qat: bool) -> None:
    """Before any training: the toolchain is there (else the command that installs it), and the options fit."""
    if qat:
        raise EdgeError(
            "--qat trains for the TFLite converter's int8, and the AI Camera's network is quantized by "
            "Sony's MCT from the float model: leave out --qat for --device rpi-ai-camera"
        )
    locate(TOOLCHAIN)


def sensor_model(model):
    """The classifier with only standard Keras layers: edge's Preprocess becomes a 1x1 convolution of the same
    affine map, read off the layer itself (f(0) is the bias, f(e_i) - f(0) the weights of channel i)."""
    from edge.converter.layers import Preprocess
    from edge.converter.tfkeras import keras, tf

    def clone(layer):
        if isinstance(layer, Preprocess):
            return keras.layers.Conv2D(3, 1, name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    for source, target in zip(model.layers, copy.layers, strict=True):
        if isinstance(source, Preprocess):
            probe = np.concatenate([np.zeros((1, 3)), np.eye(3)]).reshape(4, 1, 1, 3).astype(np.float32)
            out = source(tf.constant(probe)).numpy().reshape(4, 3)
            target.set_weights([(out[1:] - out[0]).reshape(1, 1, 3, 3), out[0]])
        else:
            target.set_weights(source.get_weights())
    return copy


def convert(model, calibration: np.ndarray, val_x: np.ndarray, keras_scores: np.ndarray, log) -> Converted:
    """Quantize and convert in the toolchain; the bundle's files and the manifest's record."""
    with tempfile.TemporaryDirectory(prefix="edge-imx500-") as folder:
        work = Path(folder)
        log("saving the model for the imx500 toolchain")
        with warnings.catch_warnings():  # "HDF5 is legacy": it is what both Kerases read
            warnings.simplefilter("ignore")
            sensor_model(model).save(work / "model.h5", save_format="h5")
        np.save(work / "calibration.npy", calibration.astype(np.float32))
        np.save(work / "val_x.npy", val_x.astype(np.float32))
        run_script(TOOLCHAIN, SCRIPT, [str(work), "--tpc", TPC_VERSION], log)
        result = json.loads((work / "result.json").read_text())
        converter = result.pop("converter")
        converted = work / "converted"
        if converter["exit"] != 0 or not (converted / PACKER).is_file():
            raise EdgeError(
                f"imxconv-tf did not convert the model (exit {converter['exit']}): "
                f"{converter_error(converter['output'])}"
            )
        difference = float(np.max(np.abs(np.load(work / "float_scores.npy") - keras_scores)))
        if difference > MATCH:  # the files lost something between the two Kerases: a bug, not the user's
            raise RuntimeError(f"the imx500 toolchain's Keras computes other scores than edge's ({difference:.2g})")
        files = {
            PACKER: (converted / PACKER).read_bytes(),
            **{name: (converted / name).read_bytes() for name in KEPT if (converted / name).is_file()},
        }
        scores = np.load(work / "sensor_scores.npy")
    memory = memory_report(json.loads(files[KEPT[1]])) if KEPT[1] in files else None
    record = {
        "converted": True,
        "packer": model_facts(files[PACKER], PACKER),
        "files": sorted(name for name in files if name != PACKER),
        "memory": memory,
        "input": {
            "size": list(val_x.shape[1:3]),
            "pixels": "RGB 0..255, uint8, as the sensor delivers them",
            "normalisation": "in the network: its first layer (1x1 convolution)",
            "resize": "stretch: the sensor scales its whole frame to the input, as training resized images",
        },
        "quantization": {
            "tool": f"MCT {result['versions']['model-compression-toolkit']} post-training",
            "target": f"imx500 TPC {result['tpc']} (edge-mdt-tpc {result['versions']['edge-mdt-tpc']})",
            "calibration_images": result["calibration_images"],
        },
        "toolchain": result["versions"],
        "seconds": result["seconds"],
        "on_device": f"imx500-package -i {PACKER} -o . (apt imx500-tools) writes network.rpk, which picamera2 loads",
        "warnings": memory_warnings(memory),
    }
    return Converted(record, scores, files)


def converter_error(output: str) -> str:
    """The converter's own error lines, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"\b(ERROR|CRITICAL|Error)\b", line)]
    return " | ".join(errors[-3:]) if errors else (lines[-1] if lines else "no output")


def size(text) -> int | None:
    """'566.41KB' -> bytes; None for what this parser does not know."""
    match = re.fullmatch(r"([\d.]+)\s*(B|KB|MB|GB)", str(text).strip())
    return round(float(match.group(1)) * SIZE_UNITS[match.group(2)]) if match else None


def memory_report(report: dict) -> dict:
    """imxconv-tf's memory report as numbers."""
    r = report.get("Memory Report", {})
    return {
        "model_bytes": size(r.get("Model Memory Physical Size")),
        "runtime_bytes": size(r.get("Runtime Memory Physical Size")),
        "used_bytes": size(r.get("Memory Usage")),
        "chip_bytes": size(r.get("Total Memory Available On Chip")),
        "utilization": r.get("Memory Utilization"),
        "fits": r.get("Fit In Chip"),
        "input_persistent": r.get("Input Persistent"),
    }


def memory_warnings(memory: dict | None) -> list[str]:
    if memory and memory["fits"] is False:
        return [
            f"the converter says the network does not fit the sensor's memory ({memory['used_bytes']} bytes of "
            f"{memory['chip_bytes']}): try a smaller backbone (mobilenetv2, mobilenetv3small) or --input-size"
        ]
    return []


def sensor_metrics(compared: dict) -> dict:
    """pipeline.compare's result for the sensor's scores, under the manifest's names."""
    return {
        **compared["tflite"],
        "agreement": compared["agreement"],
        "drop": compared["drop"],
        "max_drop": compared["max_drop"],
        "drop_exceeded": compared["drop_exceeded"],
    }
