from pathlib import Path

import numpy as np
import pytest

from edge.converter.backbones import BACKBONES, build_classifier, get_backbone
from edge.converter.quantize import to_tflite
from edge.errors import EdgeError
from edge.eval.evaluate import classify_all
from edge.interpreter import make_interpreter

# One backbone in the default suite (mobilenetv2 is the end-to-end fixture's); each takes 40-80 s to build,
# trace and convert on 2 cores. The others run with -m slow.
DEFAULT = "mobilenetv3small"


def _images(n, size):
    import cv2
    from sklearn.datasets import load_digits

    scans = load_digits().images[:n]
    return np.stack([np.dstack([cv2.resize((s * 15).astype(np.uint8), (size, size))] * 3) for s in scans])


@pytest.mark.parametrize("name", [n if n == DEFAULT else pytest.param(n, marks=pytest.mark.slow) for n in BACKBONES])
def test_every_backbone_builds_trains_one_step_and_converts(name):
    spec = BACKBONES[name]
    size = max(spec.min_size, 32)
    clf = build_classifier(spec, 3, size, weights="none", alpha=0.35 if spec.alpha else 1.0)
    images = _images(8, size)
    before = [w.copy() for w in clf.model.get_weights()]
    clf.model.compile("adam", "sparse_categorical_crossentropy")
    clf.model.fit(images.astype(np.float32), np.arange(8) % 3, batch_size=8, epochs=1, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, clf.model.get_weights(), strict=True))
    tflite = to_tflite(clf.model, "int8", "uint8", images.astype(np.float32))
    interpreter = make_interpreter(tflite)
    [(scores, _)] = classify_all(interpreter, [(images[0], None)])
    assert scores.shape == (3,) and abs(scores.sum() - 1) < 0.05
    # flat: nothing nested, so tfmot can wrap the layers
    assert not any(hasattr(layer, "layers") for layer in clf.model.layers)


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(EdgeError, match="did you mean efficientnetb0"):
        get_backbone("efficientnet-b0")


def test_imagenet_offline_says_where_to_put_the_file_and_that_works(tmp_path, monkeypatch, pretrained_file):
    import re
    import shutil

    import h5py

    monkeypatch.setenv("HOME", str(tmp_path))  # tf_keras reads ~/.keras/models (KERAS_HOME is Keras 3's)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # offline, even where a network exists
    with pytest.raises(EdgeError) as e:
        build_classifier(get_backbone("mobilenetv2"), 2, 32, weights="imagenet", alpha=0.35)
    message = str(e.value)
    name = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"  # 32 px takes the 224 file
    assert f"put {name} (from https://" in message and "--weights none" in message
    folder = re.search(r"\) in (\S+)/,", message).group(1)
    assert folder == str(tmp_path / ".keras" / "models")
    Path(folder).mkdir(parents=True)
    shutil.copy(pretrained_file, Path(folder) / name)  # as the message says: the pretrained file, by that name
    clf = build_classifier(get_backbone("mobilenetv2"), 2, 32, weights="imagenet", alpha=0.35)
    with h5py.File(pretrained_file) as f:
        kernel = f["Conv1"]["Conv1"]["kernel:0"][()]
    assert np.array_equal(clf.model.get_layer("Conv1").get_weights()[0], kernel)


def test_weights_file_is_loaded(tmp_path):
    from edge.converter.tfkeras import keras

    donor = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3), alpha=0.35)
    donor.save_weights(tmp_path / "backbone.h5")
    clf = build_classifier(get_backbone("mobilenetv2"), 2, 32, weights=str(tmp_path / "backbone.h5"), alpha=0.35)
    assert np.array_equal(clf.model.get_layer("Conv1").get_weights()[0], donor.get_layer("Conv1").get_weights()[0])


@pytest.fixture(scope="module")
def weights_files(tmp_path_factory):
    """MobileNetV2 (alpha 0.35) weights as Keras saves them: without its top, with it, cut in half; an HDF5 file
    with no layers, and a text file."""
    import h5py

    from edge.converter.tfkeras import keras

    folder = tmp_path_factory.mktemp("weights")
    keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3), alpha=0.35).save_weights(
        folder / "notop.h5"
    )
    keras.applications.MobileNetV2(
        include_top=True, weights=None, input_shape=(32, 32, 3), alpha=0.35, classes=4
    ).save_weights(folder / "top.h5")
    data = (folder / "notop.h5").read_bytes()
    (folder / "truncated.h5").write_bytes(data[: len(data) // 2])
    h5py.File(folder / "empty.h5", "w").close()
    (folder / "text.h5").write_text("not weights")
    return folder


@pytest.mark.parametrize(
    "file,model,alpha,message",
    [
        (
            "notop.h5",
            "mobilenetv2",
            1.0,
            "holds 154 layers, the first kernel (3, 3, 3, 16); mobilenetv2 at --alpha 1.0 has "
            "154 layers, the first kernel (3, 3, 3, 32)",
        ),
        (
            "notop.h5",
            "mobilenetv3small",
            1.0,
            "holds 154 layers, the first kernel (3, 3, 3, 16); mobilenetv3small at --alpha 1.0 has",
        ),
        ("top.h5", "mobilenetv2", 0.35, "holds a model with its classification top (layer 'predictions')"),
        ("truncated.h5", "mobilenetv2", 0.35, "is not a complete Keras weights file (truncated)"),
        ("text.h5", "mobilenetv2", 0.35, "is not a complete Keras weights file (not an HDF5 file)"),
        ("empty.h5", "mobilenetv2", 0.35, "holds no Keras layers: give an .h5 weights file saved from MobileNetV2"),
    ],
)
def test_a_weights_file_that_does_not_fit_says_what_it_holds(weights_files, file, model, alpha, message):
    with pytest.raises(EdgeError) as e:
        build_classifier(get_backbone(model), 2, 32, weights=str(weights_files / file), alpha=alpha)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_saved_model_is_used_as_backbone_with_its_head_cut_off(tmp_path):
    spec = get_backbone("mobilenetv2")
    first = build_classifier(spec, 5, 32, weights="none", alpha=0.35)
    first.model.save(tmp_path / "mine.keras")
    clf = build_classifier(spec, 2, 32, weights=str(tmp_path / "mine.keras"))
    assert clf.model.output_shape == (None, 2)
    assert np.array_equal(
        clf.model.get_layer("Conv1").get_weights()[0], first.model.get_layer("Conv1").get_weights()[0]
    )
    assert sum(type(layer).__name__ == "Preprocess" for layer in clf.model.layers) == 1  # not applied twice
    assert not any(hasattr(layer, "layers") for layer in clf.model.layers)
    with pytest.raises(EdgeError, match="--input-size 32"):
        build_classifier(spec, 2, 48, weights=str(tmp_path / "mine.keras"))


@pytest.mark.parametrize(
    "model,builder",
    [  # MobileNetV3's TensorFlow operations (x + 3) are what a rebuild can lose: MobileNetV2 is the slow variant
        pytest.param("mobilenetv2", "MobileNetV2", marks=pytest.mark.slow),
        ("mobilenetv3small", "MobileNetV3Small"),
    ],
)
def test_a_saved_model_without_edges_preprocessing_computes_what_it_did(model, builder, tmp_path, few_digits):
    """A plain Keras backbone saved elsewhere (it hung in keras.models.clone_model), MobileNetV3's TensorFlow
    operations (x + 3, x * c) among its layers: its own feature map, flat, behind Preprocess where it has no
    preprocessing of its own."""
    from edge.converter.datasets import load_images
    from edge.converter.layers import Preprocess
    from edge.converter.tfkeras import keras

    saved = getattr(keras.applications, builder)(input_shape=(32, 32, 3), alpha=0.75, weights=None, include_top=False)
    saved.save(tmp_path / "plain.keras")
    spec = get_backbone(model)
    clf = build_classifier(spec, 3, 32, weights=str(tmp_path / "plain.keras"), alpha=0.75)
    own = spec.preprocessing == "built-in"
    assert sum(type(layer).__name__ == "Preprocess" for layer in clf.model.layers) == (0 if own else 1)
    assert not any(hasattr(layer, "layers") for layer in clf.model.layers)
    pixels = load_images(sorted((few_digits / "7").iterdir())[:4], 32)[0].astype(np.float32)
    expected = saved.predict(pixels if own else Preprocess("tf")(pixels), verbose=0).mean(axis=(1, 2))
    assert np.allclose(clf.features.predict(pixels, verbose=0), expected, atol=1e-5)
