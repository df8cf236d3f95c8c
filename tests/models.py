"""Small real models for the quantization tests and benchmarks: a CNN trained on the digit scans, and the
same CNN changed so that plain int8 breaks it while float computes exactly what it did."""

from pathlib import Path

import numpy as np

SCALE = 1000.0


def train_cnn(train: Path, size: int = 48, epochs: int = 40, seed: int = 0):
    """A two-convolution CNN on the scans (pixels 0..255 in, scaled inside): 48 px and 40 epochs reach ~0.93.
    Returns the model and the images it trained on."""
    from edge.converter.datasets import load_split
    from edge.converter.tfkeras import keras

    split = load_split(train, size, val_split=0.01, seed=seed)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Rescaling(1 / 127.5, -1),
            keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
            keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(split.train_x.astype(np.float32), split.train_y, epochs=epochs, batch_size=32, verbose=0)
    return model, split


def branched_outlier(model, scale: float = SCALE):
    """The CNN with its second convolution split in two parts whose ReLU outputs are added (relu(0.3 z) +
    relu(0.7 z) = relu(z); unequal, or the converter would make them one), and one channel of the first
    convolution scaled by `scale`, undone in both: the same function in float, and no pair equalization joins
    (the first convolution's output has two readers)."""
    from edge.converter.tfkeras import keras

    first, second = (layer for layer in model.layers if layer.__class__.__name__ == "Conv2D")
    dense = next(layer for layer in model.layers if layer.__class__.__name__ == "Dense")
    (w1, b1), (w2, b2) = first.get_weights(), second.get_weights()
    channel = int(np.argmin(np.abs(w2).sum(axis=(0, 1, 3))))
    w1[..., channel] *= scale
    b1[channel] *= scale
    w2[:, :, channel, :] /= scale
    inputs = keras.Input(model.input_shape[1:])
    x = keras.layers.Conv2D(w1.shape[-1], 3, strides=2, activation="relu")(
        keras.layers.Rescaling(1 / 127.5, -1)(inputs)
    )
    parts = [keras.layers.Conv2D(w2.shape[-1], 3, strides=2, activation="relu") for _ in range(2)]
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Add()([part(x) for part in parts]))
    branched = keras.Model(inputs, keras.layers.Dense(dense.units, activation="softmax")(x))
    branched.layers[2].set_weights([w1, b1])
    for part, share in zip(parts, (0.3, 0.7), strict=True):
        part.set_weights([w2 * share, b2 * share])
    branched.layers[-1].set_weights(dense.get_weights())
    return branched


def add_pooled_outlier(model, scale: float = SCALE) -> int:
    """Scale one channel of the second convolution's output by `scale`, undone by the dense layer after the
    pooling: the same function in float; equalization joins the two across the pooling. Returns the channel."""
    second = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"][1]
    dense = next(layer for layer in model.layers if layer.__class__.__name__ == "Dense")
    (w2, b2), (w3, b3) = second.get_weights(), dense.get_weights()
    channel = int(np.argmin(np.abs(w3).sum(axis=1)))
    w2[..., channel] *= scale
    b2[channel] *= scale
    w3[channel, :] /= scale
    second.set_weights([w2, b2])
    dense.set_weights([w3, b3])
    return channel


def add_outlier(model, scale: float = SCALE) -> int:
    """Scale one channel of the first convolution's output by `scale`, undone by the second convolution:
    the same function in float. The channel the second convolution weighs least, so what int8 loses is
    the rest. Returns the channel."""
    first, second = (layer for layer in model.layers if layer.__class__.__name__ == "Conv2D")
    (w1, b1), (w2, b2) = first.get_weights(), second.get_weights()
    channel = int(np.argmin(np.abs(w2).sum(axis=(0, 1, 3))))
    w1[..., channel] *= scale
    b1[channel] *= scale
    w2[:, :, channel, :] /= scale
    first.set_weights([w1, b1])
    second.set_weights([w2, b2])
    return channel
