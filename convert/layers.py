"""The backbone's input normalisation as a layer, so it travels inside the exported graph and the
device only feeds RGB pixels. Keras applications differ: caffe mode is BGR minus the ImageNet means, tf
mode scales to [-1, 1], torch mode normalises by the ImageNet mean and deviation."""

from edge.converter.tfkeras import keras, tf

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)


@keras.utils.register_keras_serializable("edge")
class Preprocess(keras.layers.Layer):
    """RGB pixels 0..255 -> what the backbone was trained on. Has no weights, so ImageNet weight
    files (loaded by layer order) still line up."""

    MODES = ("caffe", "tf", "torch")

    def __init__(self, mode: str, **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"unknown preprocessing mode {mode!r}")
        self.mode = mode

    def call(self, x):
        if self.mode == "caffe":
            # RGB -> BGR with slices and a concat (not gather): int8- and Edge TPU-friendly ops.
            x = tf.concat([x[..., 2:3], x[..., 1:2], x[..., 0:1]], axis=-1)
            return x - tf.constant(CAFFE_MEAN_BGR, dtype=x.dtype)
        if self.mode == "tf":
            return x * (1.0 / 127.5) - 1.0
        return (x * (1.0 / 255.0) - tf.constant(TORCH_MEAN, dtype=x.dtype)) * tf.constant(
            [1.0 / s for s in TORCH_STD], dtype=x.dtype
        )

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
