from pathlib import Path

import pytest

from edge.converter.prune import prunable, schedule_for, tflite_sparsity


@pytest.mark.parametrize("steps,epochs", [(3, 1), (7, 5), (100, 5), (1, 2)])
def test_schedule_ends_on_a_pruning_step_before_the_last_epoch(steps, epochs):
    args, full_epoch = schedule_for(0.5, steps, epochs)
    assert args["end_step"] % args["frequency"] == 0 and args["end_step"] >= 1
    assert args["end_step"] <= steps * full_epoch and full_epoch <= max(1, epochs)
    assert args["final_sparsity"] == 0.5


@pytest.mark.slow  # an option's heavier variant (a second training): edge convert runs end to end without it
def test_pruning_reaches_the_asked_sparsity_in_the_exported_file(few_digits, tmp_path, fast, e2e):
    import edge

    pruned = edge.convert("mobilenetv2", few_digits, tmp_path / "p", prune=0.5, **{**fast, "epochs": 2})
    dense = e2e  # the same backbone and width, unpruned
    assert pruned.sparsity["sparsity"] == pytest.approx(0.5, abs=0.03)
    assert pruned.sparsity["target"] == 0.5
    assert tflite_sparsity((Path(dense.bundle) / "model.tflite").read_bytes())["sparsity"] < 0.05
    assert dense.sparsity is None

    def compressed(summary):
        return summary.model["gzip_bytes"] / summary.model["bytes"]

    assert compressed(pruned) < 0.85 * compressed(dense)


def test_prunable_layers_hold_nearly_all_weights():
    """Xception keeps its bulk in SeparableConv2D: leaving those out pruned 3% instead of 50%."""
    from edge.converter.backbones import build_classifier, get_backbone

    model = build_classifier(get_backbone("xception"), 3, 71, weights="none").model
    layers = prunable(model)
    assert any(type(layer).__name__ == "SeparableConv2D" for layer in layers)
    kernels = sum(
        layer.weights[0].shape.num_elements()
        if type(layer).__name__ != "SeparableConv2D"
        else layer.pointwise_kernel.shape.num_elements()
        for layer in layers
    )
    assert kernels / model.count_params() > 0.9
