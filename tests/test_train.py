import numpy as np
import pytest

from edge.converter.backbones import build_classifier, get_backbone
from edge.converter.train import class_weights, set_trainable


def test_class_weights_only_when_imbalanced():
    assert class_weights(np.repeat([0, 1, 2], [10, 10, 11]), 3) is None
    weights = class_weights(np.repeat([0, 1], [30, 10]), 2)
    assert weights == pytest.approx({0: 40 / 60, 1: 40 / 20})


def test_fine_tuning_unfreezes_the_top_layers_but_never_batchnorm():
    from edge.converter.tfkeras import keras

    clf = build_classifier(get_backbone("mobilenetv2"), 2, 32, weights="none", alpha=0.35)
    count = set_trainable(clf.backbone_layers, 20)
    top = clf.backbone_layers[-20:]
    assert count == sum(not isinstance(layer, keras.layers.BatchNormalization) for layer in top) > 0
    assert all(not layer.trainable for layer in clf.backbone_layers[:-20])
    assert all(not layer.trainable for layer in clf.backbone_layers if isinstance(layer, keras.layers.BatchNormalization))


def test_frozen_backbone_features_do_not_depend_on_training_mode():
    """What makes caching features valid: a frozen backbone (BatchNorm in inference mode) gives
    the same features whether called for training or inference."""
    clf = build_classifier(get_backbone("mobilenetv2"), 2, 32, weights="none", alpha=0.35)
    set_trainable(clf.backbone_layers, 0)
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype(np.float32)
    assert np.allclose(clf.features(x, training=True), clf.features(x, training=False), atol=1e-5)


@pytest.fixture(scope="module")
def backbone_weights(tmp_path_factory):
    """A weights file standing in for a pretrained backbone (no downloads here)."""
    from edge.converter.tfkeras import keras

    path = tmp_path_factory.mktemp("w") / "mobilenetv2.h5"
    keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3), alpha=0.35).save_weights(path)
    return str(path)


def test_transfer_learning_runs_two_phases_with_cached_features(few_digits, tmp_path, backbone_weights, fast):
    import edge

    s = edge.convert("mobilenetv2", few_digits, tmp_path / "b", **{**fast, "weights": backbone_weights,
                                                                    "epochs": 2, "fine_tune_epochs": 1})
    head, fine = s["training"]["phases"]
    assert head["phase"] == "head (cached features)" and head["feature_cache"]["extract_seconds"] > 0
    assert fine["phase"] == "fine-tune" and 0 < fine["unfrozen_layers"] <= 54


@pytest.mark.slow
def test_augmentation_trains_the_head_on_images(few_digits, tmp_path, backbone_weights, fast):
    import edge

    s = edge.convert("mobilenetv2", few_digits, tmp_path / "b", **{**fast, "weights": backbone_weights,
                                                                    "augment": True})
    assert [p["phase"] for p in s["training"]["phases"]] == ["head"]


def test_augmenter_keeps_shape_and_pixel_range():
    from edge.converter.augment import augmenter

    x = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3)).astype(np.float32)
    out = augmenter(seed=1)(x, training=True).numpy()
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 255
    assert not np.allclose(out, x)
