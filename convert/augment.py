"""Training-time augmentation on batches of float pixels 0..255 (never part of the exported model)."""

from edge.converter.tfkeras import keras, tf


def augmenter(seed: int = 0, flip: bool = True):
    """Flips (unless not `flip`: a mirrored digit, letter or arrow is another class, or none), small rotations,
    zoom, shifts, brightness/contrast, cutout."""
    return keras.Sequential(
        [
            *([keras.layers.RandomFlip("horizontal", seed=seed)] if flip else []),
            keras.layers.RandomRotation(0.05, fill_mode="reflect", seed=seed),
            keras.layers.RandomZoom(0.1, fill_mode="reflect", seed=seed),
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=seed),
            keras.layers.RandomBrightness(0.15, value_range=(0.0, 255.0), seed=seed),
            keras.layers.RandomContrast(0.15, seed=seed),
            keras.layers.Lambda(cutout),
        ],
        name="augment",
    )


def cutout(images, fraction: float = 0.25, probability: float = 0.5):
    """Grey out one random square of side `fraction` of the image in about half of the images."""
    shape = tf.shape(images)
    n, h, w = shape[0], shape[1], shape[2]
    side_h = tf.cast(tf.cast(h, tf.float32) * fraction, tf.int32)
    side_w = tf.cast(tf.cast(w, tf.float32) * fraction, tf.int32)
    cy = tf.random.uniform([n, 1, 1], 0, h, dtype=tf.int32)
    cx = tf.random.uniform([n, 1, 1], 0, w, dtype=tf.int32)
    rows = tf.range(h)[None, :, None]
    cols = tf.range(w)[None, None, :]
    inside = (tf.abs(rows - cy) <= side_h // 2) & (tf.abs(cols - cx) <= side_w // 2)
    inside &= tf.random.uniform([n, 1, 1]) < probability
    return tf.where(inside[..., None], tf.constant(127.5, images.dtype), tf.clip_by_value(images, 0.0, 255.0))
