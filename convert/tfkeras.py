"""TensorFlow with Keras 2 (`tf_keras`): tfmot's pruning and QAT need it, and the switch must be set
before TensorFlow is first imported. Every convert module gets `tf` and `keras` from here."""

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from edge.errors import EdgeError  # noqa: E402
from edge.quiet import quiet_stderr  # noqa: E402
from edge.version import install_hint  # noqa: E402

# TensorFlow's TFLite utilities import JAX where it is installed (the import extra's litert-torch brings it), for a
# converter from JAX edge never uses: about a second of every host command's start here. Hidden while TensorFlow
# loads, then given back, so a later `import jax` in the same process still works.
_hidden = "jax" not in sys.modules
if _hidden:
    sys.modules["jax"] = None  # type: ignore[assignment]
with quiet_stderr():
    try:
        import tensorflow as tf
        import tf_keras as keras
    except ImportError as e:
        raise EdgeError(f"edge convert needs the host extra ({e.name} is missing): {install_hint('host')}") from None
    finally:
        if _hidden:
            del sys.modules["jax"]
    tf.config.list_physical_devices()  # the CUDA probe, which complains on every machine without a GPU, now

tf.get_logger().setLevel("ERROR")

__all__ = ["keras", "tf"]
