"""A PyTorch classifier brought to edge (`edge import`): loaded from an exported program (.pt2, torch.export.save)
or a TorchScript file (torch.jit.save), run in PyTorch behind edge's preprocessing for the reference scores, and
converted to a float TFLite file by litert-torch. Only `edge import` imports this module: no other command, and
no device, needs PyTorch.
"""

import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import EdgeError, ModelError


@dataclass(frozen=True)
class TorchSource:
    """A loaded model: the module as saved, taking its own input."""

    module: Any  # a torch.nn.Module
    form: str  # "exported program" or "TorchScript"
    layout: str  # "NCHW" or "NHWC": where its input's 3 channels are
    size: tuple[int, int] | None  # the input's height and width where the file fixes them


@contextmanager
def hushed() -> Iterator[None]:
    """PyTorch, torchao and litert-torch print progress and import chatter on file descriptors 1 and 2 (and
    Python warnings about their own internals): none of it is the user's to act on. What goes wrong is raised."""
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)


def load(path: Path, input_size: tuple[int, int] | None) -> TorchSource:
    """The model in `path`, an exported program or TorchScript; `input_size` for a size the file leaves open."""
    with hushed():
        import torch

        try:
            program = torch.export.load(str(path))
        except Exception:  # not an exported program: TorchScript, or no model at all
            program = None
        if program is None:
            try:
                script = torch.jit.load(str(path), map_location="cpu")
            except Exception:
                raise ModelError(
                    f"{path} is not a PyTorch model edge can read: give an exported program "
                    "(torch.export.save, .pt2) or a TorchScript file (torch.jit.save)"
                ) from None
    return _from_program(program, path) if program is not None else _from_script(script, path, input_size)


def _from_program(program, path: Path) -> TorchSource:
    inputs = program.graph_signature.user_inputs
    if len(inputs) != 1:
        raise ModelError(f"{path} takes {len(inputs)} inputs: edge imports an image classifier, one input of one image")
    node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == inputs[0])
    shape = list(node.meta["val"].shape)
    fixed = [d if isinstance(d, int) else None for d in shape]
    if len(shape) != 4 or 3 not in (fixed[1], fixed[3]):
        shown = ", ".join(str(d) for d in shape)
        raise ModelError(
            f"{path} takes an input of shape [{shown}]: edge imports an image classifier taking [1, 3, height, "
            "width] (or [1, height, width, 3]) RGB images"
        )
    if fixed[0] not in (1, None):
        raise ModelError(f"{path} takes batches of {fixed[0]} images: export it with a batch of 1 (or a dynamic one)")
    layout = "NCHW" if fixed[1] == 3 else "NHWC"
    height, width = (fixed[2], fixed[3]) if layout == "NCHW" else (fixed[1], fixed[2])
    size = (height, width) if height is not None and width is not None else None
    return TorchSource(program.module(), "exported program", layout, size)


def _from_script(script, path: Path, input_size: tuple[int, int] | None) -> TorchSource:
    """TorchScript keeps no input shape: the size comes from --input-size; its input is PyTorch's NCHW. It becomes
    an exported program (litert-torch's input) through PyTorch's converter, the one its own refusal names."""
    import torch
    from torch._export.converter import TS2EPConverter

    if input_size is None:
        raise ModelError(f"{path} is TorchScript, which does not record its input size: give --input-size")
    script.eval()
    sample = (torch.zeros(1, 3, *input_size),)
    with hushed():
        try:
            program = TS2EPConverter(script, sample).convert()
        except Exception as e:
            raise ModelError(
                f"PyTorch cannot turn TorchScript {path} into an exported program ({_first_line(e)}): export the "
                "model with torch.export.save instead"
            ) from None
    return TorchSource(program.module(), "TorchScript", "NCHW", tuple(input_size))  # type: ignore[arg-type]


def wrapped(source: TorchSource, scale: np.ndarray, shift: np.ndarray, bgr: bool, softmax: bool):
    """The model behind edge's preprocessing: it takes [1, height, width, 3] float pixels 0..255, RGB (what
    every edge bundle takes), multiplies each channel by `scale` and adds `shift` (--input-range, --mean and
    --std in one step), reverses the channels for a `bgr` model, lays them out as it wants; with `softmax`,
    its logits become probabilities."""
    import torch

    class Preprocessed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = source.module
            self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))
            self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32))

        def forward(self, pixels):
            x = pixels * self.scale + self.shift
            if bgr:
                x = x.flip(-1)
            if source.layout == "NCHW":
                x = x.permute(0, 3, 1, 2)
            y = self.model(x)
            return torch.softmax(y, -1) if softmax else y

    return Preprocessed()


def score(source: TorchSource, images: np.ndarray, scale, shift, bgr: bool) -> list[np.ndarray]:
    """PyTorch's outputs for `images` (uint8 RGB) behind the preprocessing, one image at a time (an exported
    program may fix its batch at 1): one array per output, images stacked."""
    import torch

    module = wrapped(source, scale, shift, bgr, False)
    rows = []
    with torch.no_grad():
        for image in images:
            try:
                found = module(torch.from_numpy(image[None].astype(np.float32)))
            except Exception as e:  # the model's own code failing on our input: its size, layout or dtype
                raise ModelError(
                    f"PyTorch cannot run the model on a {list(image.shape)} image ({_first_line(e)})"
                ) from None
            found = list(found.values()) if isinstance(found, dict) else found
            found = found if isinstance(found, (list, tuple)) else [found]
            rows.append([np.asarray(o.detach().numpy() if hasattr(o, "detach") else o, np.float32)[0] for o in found])
    return [np.stack(column) for column in zip(*rows, strict=True)]


def to_tflite(source: TorchSource, size, scale, shift, bgr: bool, softmax: bool, images: np.ndarray, log) -> bytes:
    """A float TFLite file of the model behind the preprocessing (and a softmax) at `size`, by litert-torch (which
    needs no `images`: onnx2tf does)."""
    import torch

    module = wrapped(source, scale, shift, bgr, softmax)
    with hushed():
        import litert_torch

        try:
            converted = litert_torch.convert(module, (torch.zeros(1, *size, 3),))
            with tempfile.TemporaryDirectory() as folder:
                file = Path(folder) / "model.tflite"
                converted.export(str(file))
                return file.read_bytes()
        except Exception as e:
            raise EdgeError(
                f"litert-torch cannot convert the model ({_first_line(e)}): its operations are not all ones LiteRT has"
            ) from None


def versions(source: TorchSource) -> dict:
    """The converter's and PyTorch's versions, for the manifest."""
    from importlib.metadata import version

    return {"torch": version("torch"), "litert_torch": version("litert-torch")}


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]
