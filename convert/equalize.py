"""Before int8: cross-layer equalization and bias correction (Nagel et al., 2019, "Data-Free Quantization Through
Weight Equalization and Bias Correction": what Qualcomm's AIMET, Sony's MCT and OpenVINO's NNCF do first), on the
float .tflite file itself, so a model edge trained and one a user brings are treated alike.

Equalization. Two weighted operations in a row (convolution, depthwise convolution or fully connected, then
another), the first's output read by the second alone, joined by ReLU or no activation: dividing the first's
output channel c by s and multiplying the second's input channel c by s computes the same function (relu(x / s)
= relu(x) / s for s > 0). int8 gives an activation one scale for all its channels, so one channel a thousand times
wider than the rest leaves the rest a level or two; s = sqrt(the channel's range on the calibration images / the
second's weight range on it) gives both the same range. A pooling between (max, average, or a mean over height
and width) takes each channel alone and scales with it: such pairs are joined too. ReLU6 is no such join (it
clamps at 6, not at 6 / s): those pairs are left as they are.

Bias correction. int8 rounds each weight; over inputs whose channels average above zero (after a ReLU) the
rounding adds a mean error to every output channel, (W_int8 - W) . E[x], which is taken off the float bias: the
int8 weights as the quantizer itself made them (its plain int8 file), E[x] over the calibration images. It changes
the float model on purpose: it corrects the int8 one.

Whether either is used is the search's to decide (edge.converter.selective): only where it lowers the drop.
"""

import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np

from edge.quiet import quiet_stderr

STAT_IMAGES = 64  # calibration images the per-channel statistics are read over
WEIGHTED = {  # operation -> (its options' type, the weights' output channel axis, input channel axis)
    "CONV_2D": ("Conv2DOptions", 0, 3),
    "DEPTHWISE_CONV_2D": ("DepthwiseConv2DOptions", 3, 3),
    "FULLY_CONNECTED": ("FullyConnectedOptions", 0, 1),
}
JOINS = {0: "none", 1: "relu"}  # fused activations that commute with a positive scale (ActivationFunctionType)
FLOAT32, INT32, INT8 = 0, 2, 9  # TensorType
TYPES = {FLOAT32: np.float32, INT32: np.int32, INT8: np.int8}
POOLS = {"MAX_POOL_2D", "AVERAGE_POOL_2D"}  # besides a MEAN over height and width


@dataclass(frozen=True)
class _Op:
    index: int
    kind: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    activation: int | None  # fused, for a weighted operation


class _Graph:
    """The float model's first subgraph, over a copy of its bytes whose weights are written in place."""

    def __init__(self, model: bytes):
        from ai_edge_litert import schema_py_generated as schema

        self.data = bytearray(model)
        self.model = schema.Model.GetRootAs(self.data, 0)
        self.graph = self.model.Subgraphs(0)
        names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        self.ops = []
        for i in range(self.graph.OperatorsLength()):
            op = self.graph.Operators(i)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            kind = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "")
            activation = None
            if kind in WEIGHTED and op.BuiltinOptions() is not None:
                options = getattr(schema, WEIGHTED[kind][0])()
                table = op.BuiltinOptions()
                options.Init(table.Bytes, table.Pos)
                activation = options.FusedActivationFunction()
            self.ops.append(_Op(i, kind, tuple(op.InputsAsNumpy()), tuple(op.OutputsAsNumpy()), activation))
        self.readers: dict[int, list[int]] = {}
        for op in self.ops:
            for t in op.inputs:
                self.readers.setdefault(int(t), []).append(op.index)
        self.outputs = set(self.graph.OutputsAsNumpy().tolist())
        uses = Counter(self.graph.Tensors(t).Buffer() for t in range(self.graph.TensorsLength()))
        self.shared = {b for b, n in uses.items() if n > 1 and b}  # buffer 0 is every activation's: no data

    def name(self, tensor: int) -> str:
        return self.graph.Tensors(tensor).Name().decode()

    def constant(self, tensor: int, kind: int = FLOAT32) -> np.ndarray | None:
        """A constant's values (written through to the model's bytes), of TensorType `kind`; None for an
        activation, another type, or a buffer two tensors share (writing it would change both)."""
        if tensor < 0:
            return None
        t = self.graph.Tensors(tensor)
        buffer = self.model.Buffers(t.Buffer())
        if t.Type() != kind or t.Buffer() in self.shared or buffer.DataLength() == 0:
            return None
        return buffer.DataAsNumpy().view(TYPES[kind]).reshape(t.ShapeAsNumpy())

    def bytes(self) -> bytes:
        return bytes(self.data)


def channel_stats(model: bytes, inputs: np.ndarray, tensors: set[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{tensor: (largest |value| of each channel, mean of each channel)} over `inputs` (as the model takes
    them), the channel the last axis."""
    from ai_edge_litert.interpreter import Interpreter

    with warnings.catch_warnings(), quiet_stderr():  # "for debugging purposes only": reading them is the point
        warnings.simplefilter("ignore")
        interpreter = Interpreter(model_content=model, experimental_preserve_all_tensors=True)
        interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]
    largest: dict[int, np.ndarray] = {}
    total: dict[int, np.ndarray] = {}
    images = inputs[:STAT_IMAGES]
    for image in images:
        interpreter.set_tensor(index, image[None].astype(np.float32))
        interpreter.invoke()
        for t in tensors:
            values = interpreter.get_tensor(t).reshape(-1, interpreter.get_tensor(t).shape[-1])
            largest[t] = np.maximum(largest.get(t, 0.0), np.abs(values).max(0))
            total[t] = total.get(t, 0.0) + values.mean(0)
    return {t: (largest[t], total[t] / len(images)) for t in tensors}


def equalize(model: bytes, inputs: np.ndarray) -> tuple[bytes, list[dict]]:
    """The model with every pair it can join equalized, and what was done to each pair."""
    g = _Graph(model)
    pairs = list(_pairs(g))
    if not pairs:
        return model, []
    stats = channel_stats(model, inputs, {first.outputs[0] for first, _, _ in pairs})
    done = []
    for first, second, join in pairs:
        wa, wb = g.constant(first.inputs[1]), g.constant(second.inputs[1])
        assert wa is not None and wb is not None  # _pairs took only such pairs
        out_axis, in_axis = WEIGHTED[first.kind][1], WEIGHTED[second.kind][2]
        width = stats[first.outputs[0]][0]
        weight = np.abs(np.moveaxis(wb, in_axis, 0)).reshape(wb.shape[in_axis], -1).max(1)
        scale = np.where((width > 0) & (weight > 0), np.sqrt(width / np.where(weight > 0, weight, 1)), 1.0)
        scale = (scale / np.exp(np.mean(np.log(scale)))).astype(np.float32)  # their geometric mean 1: sizes kept
        wa /= _along(scale, wa.ndim, out_axis)
        bias = g.constant(first.inputs[2]) if len(first.inputs) > 2 else None
        if bias is not None:
            bias /= scale
        wb *= _along(scale, wb.ndim, in_axis)
        done.append(
            {
                "first": first.index,
                "second": second.index,
                "types": [first.kind, second.kind],
                "join": join,
                "channels": int(scale.size),
                "widest_before": round(float(width.max() / max(np.median(width), 1e-12)), 2),
                "largest_scale": round(float(scale.max() / scale.min()), 2),
            }
        )
    return g.bytes(), done


def _pairs(g: _Graph):
    """(first, second, what joins them) of each pair equalization can join: weighted operations in a row, or
    with a pooling between (a channel's mean or maximum scales with it), each one's only reader the next, into
    the second's input (not its weights); the first's activation ReLU or none; both weights float constants of
    their own; a depthwise second one channel out per channel in."""
    for first in g.ops:
        if first.kind not in WEIGHTED or first.activation not in JOINS or len(first.inputs) < 2:
            continue
        between, second = _next(g, first), None
        if between is not None and between.kind in WEIGHTED:
            between, second = None, between
        elif between is not None and _pools(g, between):
            second = _next(g, between)
        if second is None or second.kind not in WEIGHTED:
            continue
        wa, wb = g.constant(first.inputs[1]), g.constant(second.inputs[1])
        if wa is None or wb is None:
            continue
        if len(first.inputs) > 2 and first.inputs[2] >= 0 and g.constant(first.inputs[2]) is None:
            continue  # a bias not its own float constant could not be scaled with the weights
        channels = wa.shape[WEIGHTED[first.kind][1]]
        if wb.shape[WEIGHTED[second.kind][2]] != channels:
            continue  # a depthwise second with a channel multiplier, or a reshape between
        yield first, second, JOINS[first.activation or 0] + (f" + {between.kind}" if between else "")


def _next(g: _Graph, op: _Op) -> _Op | None:
    """The one operation reading `op`'s output, as its first input; None where none or several do."""
    out = int(op.outputs[0])
    readers = g.readers.get(out, [])
    if out in g.outputs or len(readers) != 1 or int(g.ops[readers[0]].inputs[0]) != out:
        return None
    return g.ops[readers[0]]


def _pools(g: _Graph, op: _Op) -> bool:
    """Whether `op` takes each channel alone, commuting with a positive scale: a max or average pooling, or a
    mean over the image's height and width."""
    if op.kind in POOLS:
        return True
    axes = g.constant(op.inputs[1], INT32) if op.kind == "MEAN" and len(op.inputs) > 1 else None
    return axes is not None and set(axes.ravel().tolist()) <= {1, 2}


def _along(values: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    shape = [1] * ndim
    shape[axis] = values.size
    return values.reshape(shape)


def correct_bias(model: bytes, plain_int8: bytes, inputs: np.ndarray) -> tuple[bytes, list[int]]:
    """The model with each weighted operation's bias less the mean error its int8 weights (as `plain_int8`
    has them) add over `inputs`; the operations corrected."""
    g = _Graph(model)
    quantized = _int8_weights(plain_int8)
    ops = [
        op
        for op in g.ops
        if op.kind in WEIGHTED
        and len(op.inputs) > 2
        and g.constant(op.inputs[2]) is not None
        and g.constant(op.inputs[1]) is not None
        and g.name(op.outputs[0]) in quantized
    ]
    if not ops:
        return model, []
    means = channel_stats(model, inputs, {int(op.inputs[0]) for op in ops})
    corrected = []
    for op in ops:
        weights, bias = g.constant(op.inputs[1]), g.constant(op.inputs[2])
        assert weights is not None and bias is not None
        error = quantized[g.name(op.outputs[0])] - weights
        mean = means[int(op.inputs[0])][1]
        if op.kind == "DEPTHWISE_CONV_2D":  # output channel c reads input channel c // multiplier
            shift = error.sum(axis=(0, 1, 2)) * np.repeat(mean, error.shape[3] // mean.size)
        elif op.kind == "CONV_2D":
            shift = error.sum(axis=(1, 2)) @ mean
        elif error.shape[1] == mean.size:
            shift = error @ mean
        else:
            continue  # a fully connected layer reading a 4-D input: its weights are not per channel
        bias -= shift.astype(np.float32)
        corrected.append(op.index)
    return g.bytes(), corrected


def restore_biases(model: bytes, original: bytes, ops: list[int]) -> bytes:
    """`model` with the biases of the operations `ops` (indices) as `original` has them: operations kept float
    after a correction made for int8 weights they do not have."""
    g, before = _Graph(model), _Graph(original)
    for i in ops:
        op = g.ops[i]
        bias = g.constant(op.inputs[2]) if op.kind in WEIGHTED and len(op.inputs) > 2 else None
        was = before.constant(before.ops[i].inputs[2]) if bias is not None else None
        if bias is not None and was is not None:
            bias[:] = was
    return g.bytes()


def _int8_weights(plain_int8: bytes) -> dict[str, np.ndarray]:
    """{output tensor's name: the dequantized int8 weights of the operation making it} of a quantized file."""
    g = _Graph(plain_int8)
    found = {}
    for op in g.ops:
        weights = g.constant(op.inputs[1], INT8) if op.kind in WEIGHTED and len(op.inputs) > 1 else None
        q = g.graph.Tensors(op.inputs[1]).Quantization() if weights is not None else None
        if weights is None or q is None or q.ScaleLength() == 0:
            continue
        axis = q.QuantizedDimension() if q.ScaleLength() > 1 else 0
        scales = _along(q.ScaleAsNumpy(), weights.ndim, axis) if q.ScaleLength() > 1 else q.ScaleAsNumpy()
        points = q.ZeroPointAsNumpy() if q.ZeroPointLength() else np.zeros(1)
        points = _along(points, weights.ndim, axis) if points.size > 1 else points
        found[g.name(op.outputs[0])] = (weights.astype(np.float32) - points) * scales
    return found
