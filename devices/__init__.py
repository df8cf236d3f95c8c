"""Device profiles (`profiles.py`), what a package for a device holds (`package.py`, `templates/`), and
the Edge TPU compiler's log (`edgetpu.py`). Device-safe: nothing here imports TensorFlow."""
