from dataclasses import asdict

import numpy as np
import pytest

from edge.converter.backbones import build_classifier, get_backbone
from edge.converter.finetune import choose_fine_tuning
from edge.converter.train import PATIENCE, class_weights, set_trainable


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
    assert all(
        not layer.trainable for layer in clf.backbone_layers if isinstance(layer, keras.layers.BatchNormalization)
    )


def test_frozen_backbone_features_do_not_depend_on_training_mode():
    """What makes caching features valid: a frozen backbone (BatchNorm in inference mode) gives
    the same features whether called for training or inference."""
    clf = build_classifier(get_backbone("mobilenetv2"), 2, 32, weights="none", alpha=0.35)
    set_trainable(clf.backbone_layers, 0)
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype(np.float32)
    assert np.allclose(clf.features(x, training=True), clf.features(x, training=False), atol=1e-5)


def test_transfer_learning_runs_two_phases_with_cached_features(few_digits, tmp_path, pretrained_file, fast):
    import edge

    s = edge.convert(
        "mobilenetv2",
        few_digits,
        tmp_path / "b",
        **{**fast, "weights": str(pretrained_file), "epochs": 2, "fine_tune_epochs": 1},
    )
    head, fine = s.training["phases"]  # the probe is never >= 0.95 here: 2 epochs of pretraining at 32 px
    assert head["phase"] == "head (cached features)" and head["feature_cache"]["extract_seconds"] > 0
    tuning = s.training["fine_tuning"]
    assert (tuning["images_per_class"], tuning["probe"]) == (13, head["val_accuracy"])  # 16 a class, 3 validate
    assert tuning == asdict(choose_fine_tuning(13, head["val_accuracy"], tuning["of"], fast.get("lr", 1e-3)))
    assert fine["phase"] == "fine-tune" and 0 < fine["unfrozen_layers"] <= tuning["layers"]
    # 39 images are 3 steps an epoch: the phases ran past the 2 and 1 epochs asked, to learn from so few
    assert head["epochs"] > 2 + PATIENCE and fine["epochs"] > 1 + PATIENCE


@pytest.mark.slow
def test_augmentation_trains_the_head_on_images(few_digits, tmp_path, pretrained_file, fast):
    import edge

    s = edge.convert(
        "mobilenetv2", few_digits, tmp_path / "b", **{**fast, "weights": str(pretrained_file), "augment": True}
    )
    assert [p["phase"] for p in s.training["phases"]] == ["head"]


def test_no_flip_leaves_mirroring_out():
    from edge.converter.augment import augmenter
    from edge.converter.tfkeras import keras

    def flips(model):
        return sum(isinstance(layer, keras.layers.RandomFlip) for layer in model.layers)

    assert (flips(augmenter()), flips(augmenter(flip=False))) == (1, 0)


def test_augmenter_keeps_shape_and_pixel_range():
    from edge.converter.augment import augmenter

    x = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3)).astype(np.float32)
    out = augmenter(seed=1)(x, training=True).numpy()
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 255
    assert not np.allclose(out, x)
