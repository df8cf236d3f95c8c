"""Small bundles for tests where the model's bytes are carried, not run: signing, pushing, downloading."""
from edge.bundle import write_bundle

MANIFEST_IN = {"labels": ["cat", "dog"], "backbone": {"name": "mobilenetv2"},
               "input": {"shape": [1, 32, 32, 3], "dtype": "uint8", "quantization": [1.0, 0], "color": "RGB",
                         "range": [-1.0, 1.0], "resize": {"mode": "stretch", "interpolation": "area"}}}


def carried_bundle(out, model: bytes = b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 8):
    """A bundle folder whose model file is `model` (2056 bytes by default): its path."""
    return write_bundle(out, model, MANIFEST_IN).path
