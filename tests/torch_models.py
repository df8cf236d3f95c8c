"""Small PyTorch classifiers trained here on real digit scans, saved as users bring them to `edge import`: an
exported program (.pt2) and TorchScript; and models edge must refuse (two outputs, a detector's output)."""

from pathlib import Path

import numpy as np

from edge.converter.datasets import load_images
from edge.folders import scan

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet's: edge import's defaults


def classifier(classes: int):
    """A small CNN with what real ones have: batch norm, a strided convolution, pooling, a linear head."""
    import torch
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),  # where the strokes are: a digit is its layout
        nn.Flatten(),
        nn.Linear(32 * 16, classes),
    ).to(torch.float32)


def tensors(folder: Path, size: int = 32):
    """Every image of `folder` (one sub-folder a class) as PyTorch takes it here: 0..1, normalised with ImageNet's
    mean and std, NCHW; their labels; the class names."""
    import torch

    found = scan(folder)
    images, kept, _ = load_images(found.paths, size)
    x = (torch.from_numpy(images).float() / 255 - torch.tensor(MEAN)) / torch.tensor(STD)
    y = torch.from_numpy(np.asarray(found.labels)[kept]).long()
    return x.permute(0, 3, 1, 2).contiguous(), y, found.classes


def fit(model, x, y, epochs: int, seed: int = 0):
    """`model` trained on (x, y) with Adam, batches of 32; returned in eval mode."""
    import torch

    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(x)).split(32):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()


def train(folder: Path, size: int = 32, epochs: int = 12, seed: int = 0):
    """The classifier trained in PyTorch on `folder` at size x size; returns (the model in eval mode, its class
    names)."""
    import torch

    torch.set_num_threads(1)  # the suite's other worker times latencies on the second core
    x, y, classes = tensors(folder, size)
    torch.manual_seed(seed)
    return fit(classifier(len(classes)), x, y, epochs, seed), classes


def save_program(model, path: Path, size: int = 32, dynamic: bool = False) -> Path:
    """torch.export.save of `model`; `dynamic`: height and width left open, as many exports leave them."""
    import torch

    sample = (torch.zeros(1, 3, size, size),)
    shapes = None
    if dynamic:
        shapes = ({2: torch.export.Dim("height", min=16, max=512), 3: torch.export.Dim("width", min=16, max=512)},)
    torch.export.save(torch.export.export(model, sample, dynamic_shapes=shapes), str(path))
    return path


def save_script(model, path: Path, size: int = 32) -> Path:
    import torch

    torch.jit.save(torch.jit.trace(model, torch.zeros(1, 3, size, size)), str(path))
    return path


def two_outputs(classes: int):
    """A classifier that also returns its features: two outputs."""
    import torch

    class Both(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = classifier(classes)

        def forward(self, x):
            features = self.body[:-1](x)
            return self.body[-1](features), features

    return Both().eval()


def detector():
    """A detector's single output: [1, anchors, 4 box coordinates + 1 score + classes]."""
    import torch

    class Boxes(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Conv2d(3, 9, 8, stride=8)

        def forward(self, x):
            return self.head(x).flatten(2).transpose(1, 2)

    return Boxes().eval()


def labels_file(path: Path, names) -> Path:
    path.write_text("".join(f"{name}\n" for name in names))
    return path
