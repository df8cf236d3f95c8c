import re

import pytest

from edge.converter.options import ConvertOptions
from edge.errors import EdgeError, OptionError


def opts(**kw):
    return ConvertOptions(**{"model": "mobilenetv2", "data": "d", "out": "o", **kw})


def test_defaults_come_from_the_tables():
    o = opts().resolved()
    assert (o.input_size, o.quantize, o.io_type, o.fine_tune_layers, o.fine_tune_lr) == (
        224,
        "int8",
        "uint8",
        "auto",
        None,
    )
    assert (o.tuning_lr, opts(fine_tune_layers="12").resolved().fine_tune_layers) == (1e-4, 12)
    assert opts(model="Xception", quantize="float16").resolved().io_type == "float32"
    assert opts(model="xception").resolved().input_size == 299


@pytest.mark.parametrize(
    "kw,message",
    [
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
        ({"teacher": ".", "distill_temperature": 0.0}, "--distill-temperature 0.0 must be above 0"),
        ({"teacher": ".", "distill_weight": 1.5}, "--distill-weight 1.5 must be between 0"),
        ({"distill_weight": 0.0}, "--distill-weight without --teacher"),
        ({"teacher": "/no/such/teacher"}, "no such file or folder"),
        ({"teacher": "/no/such/model.tflite"}, "bare .tflite file, which does not say its classes"),
    ],
)
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


# edge run's options (issue 28, part 3): RunOptions, with ReportOptions and CollectOptions nested, are the one
# place a default and a help text live; `edge run` and edge.run take them and refuse the same values alike.


def run_help() -> str:
    from click.testing import CliRunner

    from edge.cli import cli

    return CliRunner().invoke(cli, ["run", "--help"], terminal_width=1000).output


def test_edge_run_shows_the_defaults_its_dataclasses_apply():
    """Every option of edge run with a default shows it, and it is the dataclass field's: what edge.run and
    RunOptions() apply. (The collect options showed theirs as text of their own, [60], before.)"""
    from dataclasses import MISSING

    from edge.collect import CollectOptions
    from edge.options import flag_of, options
    from edge.reporter import ReportOptions
    from edge.runner import RunOptions

    text = run_help()
    lines = {line.split()[0]: line for line in text.splitlines() if line.startswith("  --")}
    made = RunOptions()
    for cls in (RunOptions, ReportOptions, CollectOptions):
        for spec in options(cls).values():
            line = lines[flag_of(spec)]
            assert spec.metadata["help"] in line, line
            if spec.default in (MISSING, None, False):
                assert "[default:" not in line, line
            else:
                assert line.endswith(f"[default: {spec.default}]"), line
    assert made.top_k == 3 and "--top-k INTEGER" in lines["--top-k"] and lines["--top-k"].endswith("[default: 3]")
    assert made.drift_thresholds == (0.1, 0.25) and lines["--drift-thresholds"].endswith("[default: 0.1,0.25]")


def test_run_options_are_frozen_and_hold_what_they_were_given_as_parsed():
    from dataclasses import FrozenInstanceError

    from edge.runner import RunOptions

    made = RunOptions(drift_thresholds="0.2,0.3")
    assert made.drift_thresholds == (0.2, 0.3) and RunOptions(drift_thresholds=(0.2, 0.3)) == made
    with pytest.raises(FrozenInstanceError):
        made.smooth = 5


REFUSED = [  # (edge run's flags, edge.run's keywords): refused before the model is even opened
    (["--smooth", "0"], dict(smooth=0)),
    (["--top-k", "0"], dict(top_k=0)),
    (["--threshold", "2"], dict(threshold=2.0)),
    (["--decode", "fats"], dict(decode="fats")),
    (["--drift-thresholds", "0.3,0.1"], dict(drift_thresholds="0.3,0.1")),
    (["--truth", "2", "--truth-schedule", "s.json"], dict(truth="2", truth_schedule="s.json")),
    (["--token", "t"], dict(token="t")),
    (
        ["--report-to", "http://pi:s3cret@127.0.0.1:1", "--token", "t", "--device-id", "pi"],
        dict(report_to="http://pi:s3cret@127.0.0.1:1", token="t", device_id="pi"),
    ),
    (
        ["--report-to", "http://127.0.0.1:1", "--token", "t", "--device-id", "pi", "--report-every", "0"],
        dict(report_to="http://127.0.0.1:1", token="t", device_id="pi", report_every=0.0),
    ),
    (["--collect", "every:5"], dict(collect="every:5")),
    (["--collect-store-mb", "5"], dict(collect_store_mb=5.0)),
    (
        ["--report-to", "http://127.0.0.1:1", "--token", "t", "--device-id", "pi", "--collect", "every:0"],
        dict(report_to="http://127.0.0.1:1", token="t", device_id="pi", collect="every:0"),
    ),
    (
        ["--report-to", "http://127.0.0.1:1", "--token", "t", "--device-id", "pi", "--collect", "wrong"],
        dict(report_to="http://127.0.0.1:1", token="t", device_id="pi", collect="wrong"),
    ),
]


def in_python(line: str) -> str:
    """A line of the command's as the API says it: its flags as keywords ("--max-frames 0" -> "max_frames 0",
    as the API's "max_frames=0" reads with its "=" a space)."""
    return re.sub(r"--([a-z][a-z0-9-]*)", lambda flag: flag[1].replace("-", "_"), line)


def same_refusal(cli, raised: EdgeError) -> None:
    """The command refused in one line, and the API the same, in the API's own words."""
    assert (cli.returncode, cli.stdout, cli.stderr.count("\n")) == (2, "", 1), cli.stderr
    said = cli.stderr.removeprefix("error: ").rstrip("\n")
    assert "--" not in str(raised), raised
    assert in_python(said).replace("=", " ") == str(raised).replace("=", " "), (said, raised)


@pytest.mark.parametrize("flags,keywords", REFUSED)
def test_edge_run_and_the_api_refuse_the_same_values_each_in_its_words(flags, keywords, tmp_path):
    import edge
    from tests.cli import edge_cli

    with pytest.raises(EdgeError) as e:
        edge.run(tmp_path / "no-model", **keywords)
    r = edge_cli("run", tmp_path / "no-model", *flags)
    same_refusal(r, e.value)
    assert "s3cret" not in r.stderr


def test_edge_run_takes_options_or_keywords_not_both(tmp_path):
    import edge
    from edge.runner import RunOptions

    with pytest.raises(EdgeError, match=r"takes options \(a RunOptions\) or keywords \(smooth\), not both"):
        edge.run(tmp_path / "no-model", options=RunOptions(), smooth=2)


# edge convert's and edge quantize's options (issue 28, part 3): ConvertOptions and QuantizeOptions state each
# default and help text once; the commands' flags (bench's training flags too) are made from them, and the
# CLI and the API refuse the same values with the same line.


def test_convert_options_are_frozen_check_themselves_when_made_and_resolve_to_a_copy():
    from dataclasses import FrozenInstanceError

    made = opts(quantize="float16")
    assert (made.io_type, made.resolved().io_type, made.resolved().input_size) == (None, "float32", 224)
    with pytest.raises(FrozenInstanceError):
        made.epochs = 3
    with pytest.raises(OptionError, match="cannot be negative"):
        ConvertOptions(data="d", epochs=-1)
    with pytest.raises(OptionError, match="--data is required"):
        ConvertOptions()


@pytest.mark.parametrize(
    "command,path,names",
    [
        ("convert", "edge.converter.options:ConvertOptions", None),
        ("bench", "edge.converter.options:ConvertOptions", "training"),
        ("quantize", "edge.converter.quantize_model:QuantizeOptions", None),
    ],
)
def test_convert_quantize_and_bench_show_the_help_and_defaults_of_their_dataclasses(command, path, names):
    """Each option made from a field shows the field's help and default: what the API applies. (--max-drop,
    --fallback, --calibration-images and --seed stated theirs as text of their own, [0.01], before.)"""
    from dataclasses import MISSING
    from importlib import import_module

    from click.testing import CliRunner

    from edge.cli import TRAINING, cli
    from edge.options import flag_of, options

    text = CliRunner().invoke(cli, [command, "--help"], terminal_width=1000).output
    lines = {line.split()[0]: line for line in text.splitlines() if line.startswith("  --")}
    module, name = path.split(":")
    made = options(getattr(import_module(module), name))
    for keyword, spec in made.items():
        if (names and keyword not in TRAINING) or keyword == "calibration_images" and command == "convert":
            continue  # bench's own --out and --data; calibration_images: edge.convert's alone
        line = lines[flag_of(spec)]
        assert spec.metadata["help"] in line, line
        if spec.default in (MISSING, None) or spec.default is False:
            assert "[default:" not in line, line
        else:
            shown = keyword.replace("_", "-") if spec.default is True else spec.default  # an on/off flag: its name
            assert line.endswith(f"[default: {shown}]"), line
    assert lines["--seed"].endswith("[default: 0]")
    if command != "bench":
        assert lines["--max-drop"].endswith("[default: 0.01]") and lines["--fallback"].endswith("[default: float]")


REFUSED_CONVERT = [  # (the command, its flags, the API's keywords): refused before any work
    ("convert", ["--epochs", "-1"], dict(epochs=-1)),
    ("convert", ["--quantize", "int4"], dict(quantize="int4")),
    ("convert", ["--device", "coral-usb", "--quantize", "float16"], dict(device="coral-usb", quantize="float16")),
    ("convert", ["--max-drop", "2"], dict(max_drop=2.0)),
    ("convert", ["--teacher", ".", "--distill-temperature", "-1"], dict(teacher=".", distill_temperature=-1.0)),
    ("quantize", ["--calibration-images", "5"], dict(calibration_images=5)),
    ("quantize", ["--fallback", "int61"], dict(fallback="int61")),
]


@pytest.mark.parametrize("command,flags,keywords", REFUSED_CONVERT)
def test_edge_convert_quantize_and_the_api_refuse_the_same_values_each_in_its_words(command, flags, keywords, tmp_path):
    import edge
    from tests.cli import edge_cli

    model = [tmp_path / "float.tflite"] if command == "quantize" else []
    with pytest.raises(EdgeError) as e:
        getattr(edge, command)(*model, data=tmp_path / "photos", out=tmp_path / "out", **keywords)
    r = edge_cli(command, *model, "--data", tmp_path / "photos", "--out", tmp_path / "out", *flags)
    same_refusal(r, e.value)
    assert not (tmp_path / "out").exists()


def test_convert_and_quantize_take_options_or_keywords_not_both(tmp_path):
    import edge
    from edge.converter.quantize_model import QuantizeOptions

    made = ConvertOptions(data=tmp_path / "nowhere", out=tmp_path / "out")
    with pytest.raises(OptionError, match=r"edge convert takes options \(a ConvertOptions\) or keywords \(epochs\)"):
        edge.convert(options=made, epochs=2)
    with pytest.raises(EdgeError, match="does not exist"):  # the options given were the ones used
        edge.convert(options=made)
    with pytest.raises(EdgeError, match="edge quantize has no option 'calibration_image': did you mean"):
        edge.quantize(tmp_path / "float.tflite", tmp_path, tmp_path / "q", calibration_image=20)
    with pytest.raises(EdgeError, match="float.tflite"):
        edge.quantize(options=QuantizeOptions(model=tmp_path / "float.tflite", data=tmp_path, out=tmp_path / "q"))


@pytest.mark.parametrize(
    "given,message",
    [
        ({"max_frames": 0}, "max_frames=0 must be a whole number, at least 1"),
        ({"token": "t"}, "token and device_id are for reporting: add report_to=URL"),
        (
            {"collect": "uncertain:7"},
            "collect=uncertain:7: give the margin as a number above 0 and up to 1, e.g. uncertain:0.2",
        ),
        ({"report_to": "http://h", "token": "t", "device_id": "d", "report_every": -1}, "report_every=-1: give"),
        ({"trust": ["k"]}, "trust is for follow_models: add it, or leave trust out"),
    ],
)
def test_a_python_caller_reads_the_parameters_it_gave_not_the_flags(given, message):
    from edge.collect import CollectOptions
    from edge.follow import FollowOptions
    from edge.options import python_names
    from edge.reporter import ReportOptions
    from edge.runner import RunOptions, run_options

    with pytest.raises(OptionError) as refused:
        with python_names(RunOptions, ReportOptions, CollectOptions, FollowOptions):
            run_options(given)
    assert str(refused.value).startswith(message) and "--" not in str(refused.value), str(refused.value)
    with pytest.raises(OptionError, match="--"):  # the command line's words, outside
        run_options(given)
