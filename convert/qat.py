"""Quantization-aware training set-up (tfmot): fake-quantized weights and activations while
fine-tuning, so the int8 file loses less accuracy than with post-training quantization."""

import tensorflow_model_optimization as tfmot
from tensorflow_model_optimization.python.core.api.quantization import keras as quant  # tfmot.quantization.keras
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
    default_8bit_quantize_registry,
)

from edge.converter.layers import Preprocess
from edge.converter.tfkeras import keras


class OutputQuantized(quant.QuantizeConfig):
    """For our preprocessing layer: no weights; its output (the first conv's input) is quantized,
    as the int8 converter does. Without a config, tfmot's prune-preserving scheme fails on it."""

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [
            quant.quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)
        ]

    def get_config(self):
        return {}


def quantization_aware(model, preserve_sparsity: bool = False):
    """The model with fake-quantization on every layer tfmot supports, and on our preprocessing
    output. With `preserve_sparsity`, pruned zeros stay 0 while training."""
    registry = default_8bit_quantize_registry.Default8BitQuantizeRegistry()

    def annotate(layer):
        if isinstance(layer, Preprocess):
            return quant.quantize_annotate_layer(layer, quantize_config=OutputQuantized())
        return quant.quantize_annotate_layer(layer) if registry.supports(layer) else layer

    annotated = keras.models.clone_model(model, clone_function=annotate)
    scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme() if preserve_sparsity else None
    with quant.quantize_scope({"OutputQuantized": OutputQuantized, "Preprocess": Preprocess}):
        return quant.quantize_apply(annotated, scheme) if scheme else quant.quantize_apply(annotated)
