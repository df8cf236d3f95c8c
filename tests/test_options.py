import pytest

from edge.converter.options import ConvertOptions
from edge.errors import EdgeError


def opts(**kw):
    return ConvertOptions(**{"model": "mobilenetv2", "data": "d", "out": "o", **kw})


def test_defaults_come_from_the_tables():
    o = opts().resolved()
    assert (o.input_size, o.quantize, o.io_type, o.fine_tune_layers, o.fine_tune_lr) == (224, "int8", "uint8", "auto", None)
    assert (o.tuning_lr, opts(fine_tune_layers="12").resolved().fine_tune_layers) == (1e-4, 12)
    assert opts(model="Xception", quantize="float16").resolved().io_type == "float32"
    assert opts(model="xception").resolved().input_size == 299


@pytest.mark.parametrize("kw,message", [
    ({"model": "xceptoin"}, "did you mean xception"),
    ({"model": "mobilenet"}, "did you mean mobilenetv2"),
    ({"quantize": "int4"}, "unknown quantization 'int4'.*int8"),
    ({"quantize": "float16", "io_type": "uint8"}, "does not go with"),
    ({"io_type": "uint16"}, "unknown io type"),
    ({"model": "inceptionv3", "input_size": 64}, "below inceptionv3's minimum of 75"),
    ({"val_split": 1.5}, "between 0 and 1"),
    ({"prune": 1.0}, "sparsity between 0 and 1"),
    ({"prune": 0.5, "fine_tune_epochs": 0}, "needs --fine-tune-epochs"),
    ({"qat": True, "quantize": "float16"}, "--qat"),
    ({"alpha": 0.5, "model": "resnet50"}, "MobileNets only"),
    ({"epochs": 0, "fine_tune_epochs": 0}, "nothing to train"),
    ({"fine_tune_layers": "all"}, "give auto .*or a count"),
    ({"fine_tune_layers": -3}, "give auto .*or a count"),
    ({"weights": "/no/such/file.h5"}, "no such file"),
    ({"lr": -1.0}, "--lr"),
])
def test_nonsense_is_refused_with_a_hint(kw, message):
    with pytest.raises(EdgeError, match=message):
        opts(**kw).resolved()


def test_pruning_from_scratch_uses_the_training_epochs():
    assert opts(weights="none", prune=0.5, fine_tune_epochs=0).resolved().prune == 0.5


def test_a_device_profile_sets_the_quantization():
    coral = opts(device="coral-usb").resolved()
    assert (coral.quantize, coral.io_type, coral.device) == ("int8", "uint8", "coral-usb")
    assert opts(device="rpi4", quantize="float16").resolved().quantize == "float16"  # the CPU runs anything
    for kw in ({"quantize": "float32"}, {"io_type": "int8"}, {"quantize": "dynamic"}):
        with pytest.raises(EdgeError, match="coral-usb runs only full int8 with uint8 IO"):
            opts(device="coral-usb", **kw).resolved()
    with pytest.raises(EdgeError, match="did you mean rpi5 or rpi4"):
        opts(device="rpi").resolved()


@pytest.mark.parametrize("command", ["convert", "bench"])
def test_the_cli_shows_the_defaults_the_api_applies(command):
    """The CLI passes on only what the user typed; the defaults --help shows must be ConvertOptions' own."""
    from dataclasses import fields

    from edge.cli import cli

    defaults = {f.name: f.default for f in fields(ConvertOptions)}
    shown = {p.name: p.default for p in cli.commands[command].params
             if p.name in defaults and p.show_default and p.name != "out"}  # bench's --out is its own folder
    assert len(shown) >= 10 and shown == {name: defaults[name] for name in shown}
