"""An ONNX classifier for `edge import`, inside the onnx2tf toolchain's venv (onnx2tf, ONNX Runtime, TensorFlow
2.19, numpy 1.26): `edge.converter.onnx_model` runs this file with that venv's Python. It cannot import edge,
which is not installed there: everything comes and goes as files in one work folder.

    inspect MODEL WORK     -> WORK/model.json: opset, the inputs (name, shape: numbers, or names where open),
                              the outputs' names
    score MODEL WORK       WORK/request.json, WORK/images.npy (N x H x W x 3 uint8 RGB)
                           -> WORK/output_<i>.npy: ONNX Runtime's outputs, one array each, images stacked
    convert MODEL WORK     WORK/request.json -> WORK/model.tflite: onnx2tf's graph behind the preprocessing
                           (and a softmax), taking [1, H, W, 3] float pixels 0..255, RGB

request.json: {"size": [H, W], "scale": [3 numbers], "shift": [3], "bgr": bool, "softmax": bool}: a pixel p goes
to p * scale + shift a channel, then BGR order if asked, then NCHW, as the model takes it.
"""

import json
import os
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np


def inspect(model: Path, work: Path) -> None:
    import onnx

    proto = onnx.load(str(model), load_external_data=False)
    graph = proto.graph
    given = {init.name for init in graph.initializer}  # older exporters list weights as inputs too

    def shape(value) -> list:
        dims = value.type.tensor_type.shape.dim
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]

    facts = {
        "opset": max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0),
        "domains": sorted({o.domain for o in proto.opset_import if o.domain not in ("", "ai.onnx")}),
        "inputs": [{"name": i.name, "shape": shape(i)} for i in graph.input if i.name not in given],
        "outputs": [o.name for o in graph.output],
        "versions": {"onnx": version("onnx"), "onnxruntime": version("onnxruntime"), "onnx2tf": version("onnx2tf")},
    }
    (work / "model.json").write_text(json.dumps(facts))


def model_input(images: np.ndarray, request: dict) -> np.ndarray:
    x = images.astype(np.float32) * np.float32(request["scale"]) + np.float32(request["shift"])
    if request["bgr"]:
        x = x[..., ::-1]
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def score(model: Path, work: Path) -> None:
    import onnxruntime

    request = json.loads((work / "request.json").read_text())
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = model_input(np.load(work / "images.npy"), request)
    rows = [session.run(None, {name: x[i : i + 1]}) for i in range(len(x))]  # its batch may be fixed at 1
    for i in range(len(rows[0])):
        np.save(work / f"output_{i}.npy", np.stack([np.asarray(row[i], np.float32)[0] for row in rows]))


def convert(model: Path, work: Path) -> None:
    import onnx2tf
    import tensorflow as tf

    request = json.loads((work / "request.json").read_text())
    facts = json.loads((work / "model.json").read_text())
    height, width = request["size"]
    started = time.perf_counter()
    first = facts["inputs"][0]
    # onnx2tf checks its graph on a sample of images it would download from GitHub; it reads one in the working
    # directory instead: edge writes the user's own images there.
    os.chdir(work)
    onnx2tf.convert(
        input_onnx_file_path=str(model),
        output_folder_path=str(work / "saved"),
        overwrite_input_shape=[f"{first['name']}:1,3,{height},{width}"],
        non_verbose=True,
    )
    loaded = tf.saved_model.load(str(work / "saved"))
    infer = loaded.signatures["serving_default"]
    name = list(infer.structured_input_signature[1])[0]
    output = list(infer.structured_outputs)[0]
    scale, shift = tf.constant(request["scale"], tf.float32), tf.constant(request["shift"], tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([1, height, width, 3], tf.float32, name="pixels")])
    def pixels_in(pixels):
        x = pixels * scale + shift
        if request["bgr"]:
            x = tf.reverse(x, axis=[-1])
        y = infer(**{name: x})[output]  # onnx2tf's graph takes NHWC: it moved the layout inside
        return tf.nn.softmax(y) if request["softmax"] else y

    converter = tf.lite.TFLiteConverter.from_concrete_functions([pixels_in.get_concrete_function()], loaded)
    (work / "model.tflite").write_bytes(converter.convert())
    (work / "result.json").write_text(json.dumps({"seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    step, model_path, work_path = sys.argv[1:4]
    {"inspect": inspect, "score": score, "convert": convert}[step](Path(model_path), Path(work_path))
