"""The Python API: the names `import edge` gives stay functions whatever else is imported (a module named
like one would replace it), and it refuses what the CLI refuses, with the same EdgeError."""

from types import FunctionType

import pytest

import edge
from edge.errors import EdgeError
from tests.test_layers import modules


def test_api_names_are_not_shadowed_by_modules():
    from importlib import import_module

    for module in modules():
        if not module.startswith("edge.server"):  # the serve extra's
            import_module(module)
    for name in ("convert", "quantize", "evaluate", "bench", "run", "demo", "read_bundle"):
        assert isinstance(getattr(edge, name), FunctionType), name


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda d, b: edge.convert("mobilenetv2", None), "data is required"),
        (lambda d, b: edge.convert("mobilenetv2", d, epochs=-1), "cannot be negative"),
        (lambda d, b: edge.convert("mobilenetv2", d, epocs=3), "did you mean epochs"),
        (lambda d, b: edge.bench([b], d, epochs=3), "epochs is for training a model"),
        (lambda d, b: edge.bench([b], d, variants="int8"), "variants is for training"),
        (lambda d, b: edge.bench([b], d, rounds=-1), "rounds=-1 cannot be negative"),
        (lambda d, b: edge.bench([], d, labels="labels.txt"), "for bare .tflite arguments"),
        (lambda d, b: edge.bench([], None), "data is required"),
        (lambda d, b: edge.evaluate(b, None), "data is required"),
        (lambda d, b: edge.evaluate(b, d, input_range="-1,1"), "is a bundle"),
        (lambda d, b: edge.evaluate(b, d, threads=0), "threads=0 must be at least 1"),
        (lambda d, b: edge.run(b, d, token="t"), "token and device_id are for reporting"),
        (lambda d, b: edge.run(b, d, smooth=0), "smooth=0 must be at least 1"),
        (lambda d, b: edge.run(b, d, treshold=0.5), "did you mean threshold"),
    ],
)
def test_the_api_refuses_what_the_cli_refuses(few_digits, e2e, call, message):
    with pytest.raises(EdgeError, match=message):
        call(few_digits, e2e.bundle)
