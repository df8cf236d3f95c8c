"""TensorFlow with Keras 2 (`tf_keras`): tfmot's pruning and QAT need it, and the switch must be set
before TensorFlow is first imported. Every convert module gets `tf` and `keras` from here."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

try:
    import tensorflow as tf
    import tf_keras as keras
except ImportError as e:
    from edge.errors import EdgeError

    raise EdgeError(f"edge convert needs the host extra ({e.name} is missing): pip install 'edge[host]'") from None

tf.get_logger().setLevel("ERROR")

__all__ = ["keras", "tf"]
