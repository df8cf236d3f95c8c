"""TensorFlow with Keras 2 (`tf_keras`): tfmot's pruning and QAT need it, and the switch must be set
before TensorFlow is first imported. Every convert module gets `tf` and `keras` from here."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from edge.errors import EdgeError  # noqa: E402
from edge.quiet import quiet_stderr  # noqa: E402
from edge.version import install_hint  # noqa: E402

with quiet_stderr():
    try:
        import tensorflow as tf
        import tf_keras as keras
    except ImportError as e:
        raise EdgeError(f"edge convert needs the host extra ({e.name} is missing): {install_hint('host')}") from None
    tf.config.list_physical_devices()  # the CUDA probe, which complains on every machine without a GPU, now

tf.get_logger().setLevel("ERROR")

__all__ = ["keras", "tf"]
