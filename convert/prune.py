"""Magnitude pruning with tfmot's polynomial schedule, and sparsity measured on the exported file.

Only Conv2D, Dense and the pointwise half of SeparableConv2D (Xception's bulk) are pruned: they hold
nearly all the weights, while pruning depthwise kernels (9 weights a channel) costs accuracy for
almost no size. Pruning shrinks the compressed
file, not latency (zeros compress; dense kernels still multiply them), so EXPERIMENTAL_SPARSITY is
never asked of the converter.
"""

import math

import numpy as np

PRUNED_LAYERS = ("Conv2D", "SeparableConv2D", "Dense")


def prunable(model) -> list:
    return [layer for layer in model.layers if type(layer).__name__ in PRUNED_LAYERS]


def schedule_for(sparsity: float, steps_per_epoch: int, epochs: int) -> tuple[dict, int]:
    """Pruning reaches `sparsity` halfway through the phase, leaving the rest to recover (ramping over
    the whole phase left no epoch to recover: pruned MobileNetV2 fell to 50% accuracy). Returns the
    schedule's arguments and the first epoch at which the target sparsity holds."""
    ramp_epochs = max(1, math.ceil(epochs / 2))
    end_step = steps_per_epoch * ramp_epochs
    frequency = max(1, end_step // 10)
    end_step = frequency * max(1, end_step // frequency)  # tfmot prunes only on multiples of frequency
    return (
        {
            "initial_sparsity": 0.0,
            "final_sparsity": float(sparsity),
            "begin_step": 0,
            "end_step": end_step,
            "frequency": frequency,
        },
        ramp_epochs,
    )


def wrap(model, sparsity: float, steps_per_epoch: int, epochs: int):
    """(model with pruning wrappers, callbacks, first epoch at full sparsity). Wrapped layers share
    their weights with `model`; the rest are the same layer objects."""
    import tensorflow_model_optimization as tfmot

    from edge.converter.tfkeras import keras

    arguments, full_epoch = schedule_for(sparsity, steps_per_epoch, epochs)
    schedule = tfmot.sparsity.keras.PolynomialDecay(**arguments)
    targets = set(map(id, prunable(model)))

    def clone(layer):
        if id(layer) in targets:
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    wrapped = keras.models.clone_model(model, clone_function=clone)
    return wrapped, [tfmot.sparsity.keras.UpdatePruningStep()], full_epoch


def strip(model):
    import tensorflow_model_optimization as tfmot

    return tfmot.sparsity.keras.strip_pruning(model)


def tflite_sparsity(model: bytes) -> dict:
    """Fraction of zero weights in the exported file's convolution and fully-connected weights
    (TFLite quantizes weights symmetrically, so a pruned weight stays exactly 0 in every format)."""
    from edge.interpreter import make_interpreter

    interpreter = make_interpreter(model, threads=1)
    ops = interpreter._get_ops_details()  # the public API lists tensors, not which op uses them
    # float16 models feed convolutions through DEQUANTIZE: count the stored fp16 constant instead.
    stored = {int(op["outputs"][0]): int(op["inputs"][0]) for op in ops if op["op_name"] == "DEQUANTIZE"}
    zeros = total = 0
    for op in ops:
        if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED") and len(op["inputs"]) > 1:
            index = int(op["inputs"][1])
            weights = interpreter.get_tensor(stored.get(index, index))
            zeros += int(np.count_nonzero(weights == 0))
            total += weights.size
    return {"zeros": zeros, "weights": total, "sparsity": zeros / total if total else 0.0}
