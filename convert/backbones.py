"""The backbone registry: one row per Keras application we fine-tune, and the builder that puts a
classifier head on it.

The table imports nothing heavy, so `edge convert --list-models` and option checks are instant;
TensorFlow is imported only when a model is built.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

from edge.errors import EdgeError, choose


@dataclass(frozen=True)
class Backbone:
    name: str
    builder: str  # class name in keras.applications
    input_size: int  # default (and the size its ImageNet weights were trained at)
    min_size: int  # smallest input Keras accepts for it
    params_m: float  # published parameter count in millions, with the ImageNet classifier
    preprocessing: str  # "caffe" | "tf" | "torch" (added in front), or "built-in" (inside the application)
    alpha: bool = False  # takes a width multiplier


# A table, a row a choice: kept as it reads, not one value a line.
# fmt: off
BACKBONES = {b.name: b for b in (
    Backbone("vgg16", "VGG16", 224, 32, 138.4, "caffe"),
    Backbone("resnet50", "ResNet50", 224, 32, 25.6, "caffe"),
    Backbone("inceptionv3", "InceptionV3", 299, 75, 23.9, "tf"),
    Backbone("xception", "Xception", 299, 71, 22.9, "tf"),
    Backbone("mobilenetv2", "MobileNetV2", 224, 32, 3.5, "tf", alpha=True),
    Backbone("mobilenetv3small", "MobileNetV3Small", 224, 32, 2.5, "built-in", alpha=True),
    Backbone("mobilenetv3large", "MobileNetV3Large", 224, 32, 5.4, "built-in", alpha=True),
    Backbone("efficientnetb0", "EfficientNetB0", 224, 32, 5.3, "built-in"),
)}
# fmt: on


def get_backbone(name: str) -> Backbone:
    return BACKBONES[choose("model", name.lower(), BACKBONES)]


@dataclass
class Classifier:
    model: object  # keras.Model: RGB pixels 0..255 -> class probabilities
    features: object  # keras.Model: pixels -> pooled backbone features
    head: object  # keras.Model: pooled features -> probabilities; shares its layers with `model`
    backbone_layers: list  # the backbone's layers, bottom to top: what fine-tuning may unfreeze


def build_classifier(
    spec: Backbone, n_classes: int, input_size: int, weights: str = "imagenet", alpha: float = 1.0, dropout: float = 0.2
) -> Classifier:
    """A flat functional model (tfmot cannot prune a nested application): pixels -> preprocessing ->
    backbone -> global average pooling -> dropout -> softmax."""
    from edge.converter.layers import Preprocess
    from edge.converter.tfkeras import keras

    pixels = keras.Input((input_size, input_size, 3), name="pixels")
    saved = _load_saved_model(weights) if weights not in ("imagenet", "none") else None
    has_own_preprocess = saved is not None and any(isinstance(layer, Preprocess) for layer in saved.layers)
    x = pixels if spec.preprocessing == "built-in" or has_own_preprocess else Preprocess(spec.preprocessing)(pixels)
    trunk = _trunk_of(saved, x, input_size) if saved is not None else _application(spec, x, input_size, weights, alpha)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(trunk.output)
    drop = keras.layers.Dropout(dropout, name="head_dropout")
    dense = keras.layers.Dense(n_classes, activation="softmax", name="head")
    model = keras.Model(pixels, dense(drop(pooled)), name=f"edge_{spec.name}")
    features_in = keras.Input(pooled.shape[1:], name="features")
    head = keras.Model(features_in, dense(drop(features_in)), name="head")
    body = [layer for layer in trunk.layers if not isinstance(layer, (keras.layers.InputLayer, Preprocess))]
    return Classifier(model, keras.Model(pixels, pooled, name="features"), head, body)


def _application(spec: Backbone, x, input_size: int, weights: str, alpha: float):
    from edge.converter.tfkeras import keras

    kwargs = {"alpha": alpha} if spec.alpha else {}
    source = {"imagenet": "imagenet", "none": None}.get(weights, weights)
    try:
        return getattr(keras.applications, spec.builder)(
            include_top=False, weights=source, input_tensor=x, input_shape=(input_size, input_size, 3), **kwargs
        )
    except Exception as e:  # Keras raises a bare Exception for a failed download
        url = re.search(r"URL fetch failure on (\S+): ", str(e))
        if url:
            name = url.group(1).rsplit("/", 1)[-1]
            folder = keras_cache()
            raise EdgeError(
                f"ImageNet weights for {spec.name} are not cached and cannot be downloaded: "
                f"put {name} (from {url.group(1)}) in {folder}/, or use --weights none or "
                "--weights PATH"
            ) from None
        if isinstance(e, (ValueError, OSError)) and source not in ("imagenet", None):
            raise EdgeError(weights_mismatch(spec, source, input_size, kwargs)) from None
        if isinstance(e, (ValueError, OSError)):
            raise EdgeError(f"cannot build {spec.name} with weights {weights!r}: {str(e).splitlines()[0]}") from None
        raise


def keras_cache() -> Path:
    """Where tf_keras looks for downloaded weights: ~/.keras/models (KERAS_HOME is Keras 3's, not tf_keras'), or
    /tmp/.keras/models when ~/.keras exists but cannot be written to."""
    home = Path.home() / ".keras"
    return (home if not home.exists() or os.access(home, os.W_OK) else Path("/tmp/.keras")) / "models"


TOPS = ("predictions", "logits", "fc1000", "probs")  # the names Keras gives a classification top's layer


def weights_file(path) -> dict:
    """What a Keras weights file (.h5) holds: its layers' names and its first convolution kernel's shape; or, as
    "unreadable", why it cannot be read."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f  # a whole saved model keeps them there
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("layer_names", [])]
            kernels = [
                group[n][w.decode() if isinstance(w, bytes) else w].shape
                for n in names
                for w in group[n].attrs.get("weight_names", [])
            ]
            kernels = [k for k in kernels if len(k) == 4]  # convolutions' (a normalisation's mean comes first)
    except (OSError, KeyError) as e:
        reason = "truncated" if "truncated" in str(e) else "not an HDF5 file" if "signature" in str(e) else str(e)
        return {"unreadable": reason}
    return {"layers": names, "first_kernel": tuple(kernels[0]) if kernels else None}


def weights_mismatch(spec: Backbone, path: str, input_size: int, kwargs: dict) -> str:
    """Why a weights file does not fit the backbone asked for: what it holds against what was expected."""
    from edge.converter.tfkeras import keras

    held = weights_file(path)
    if "unreadable" in held:
        return (
            f"--weights {path} is not a complete Keras weights file ({held['unreadable']}): download or save "
            "it again (an .h5 file of the backbone without its top)"
        )
    if not held["layers"]:
        return f"--weights {path} holds no Keras layers: give an .h5 weights file saved from {spec.builder}"
    top = [n for n in held["layers"] if n.lower() in TOPS]
    if top:
        return (
            f"--weights {path} holds a model with its classification top (layer '{top[0]}'): give the file "
            f"without it (Keras names ImageNet's '..._notop.h5' or '..._no_top...h5')"
        )
    expected = getattr(keras.applications, spec.builder)(
        include_top=False, weights=None, input_shape=(input_size, input_size, 3), **kwargs
    )
    kernel = next(tuple(w.shape) for layer in expected.layers for w in layer.get_weights() if w.ndim == 4)
    asked = spec.name + (f" at --alpha {kwargs['alpha']}" if kwargs else "")
    return (
        f"--weights {path} holds {len(held['layers'])} layers, the first kernel {held['first_kernel']}; "
        f"{asked} has {len(expected.layers)} layers, the first kernel {kernel}: give weights saved from "
        "that backbone, or the --model and --alpha the file was saved with"
    )


def _load_saved_model(path: str):
    """A saved Keras model to use as backbone, or None when `path` is a weights file."""
    from edge.converter.tfkeras import keras

    try:
        return keras.models.load_model(path, compile=False)
    except Exception:  # not a whole model: Keras gets it as a weights file for the application
        return None


def _trunk_of(saved, x, input_size: int):
    """The saved model up to its last spatial feature map (its classifier head cut off), rebuilt on
    `x` with the same layer objects so the result stays flat and keeps its weights."""
    from edge.converter.tfkeras import keras

    shape = saved.input_shape
    if isinstance(shape, list) or len(shape) != 4:
        raise EdgeError("--weights model must take one image input (batch, height, width, 3)")
    if shape[1] not in (None, input_size):
        raise EdgeError(f"--weights model takes {shape[1]}x{shape[2]} images: pass --input-size {shape[1]}")
    spatial = [layer for layer in saved.layers if len(layer.output_shape) == 4 and layer is not saved.layers[0]]
    if not spatial:
        raise EdgeError("--weights model has no convolutional feature map to use as a backbone")
    trunk = keras.Model(saved.inputs, spatial[-1].output)
    # trunk.call replays its graph with the same layer objects on x: flat, where calling trunk(x) would nest it and
    # keras.models.clone_model with the layers kept loops forever when x is not an Input (behind edge's Preprocess)
    return keras.Model(keras.utils.get_source_inputs(x), trunk.call(x))  # from the pixels, as applications
