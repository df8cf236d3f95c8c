"""What a Python caller can catch by what it means (edge.errors): every user error is an EdgeError, and the
option, model, source and host ones are their own kinds; the CLI says each in one line, exit 2."""

import pytest

import edge
from edge.errors import EdgeError, HostError, ModelError, OptionError, SourceError
from tests.cli import edge_cli


def test_each_kind_of_user_error_is_its_own_class(e2e, few_digits, tmp_path):
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a model at all")
    cases = [
        (lambda: edge.evaluate(broken, few_digits, labels=None), ModelError, "is not a usable TFLite model"),
        (lambda: edge.evaluate(e2e.bundle, tmp_path / "nowhere"), SourceError, "does not exist"),
        (lambda: edge.run(e2e.bundle, few_digits / "0", top_k=0), OptionError, "top_k=0 must be a whole number"),
        (lambda: edge.run(e2e.bundle, few_digits / "0", top_kk=3), OptionError, "edge run has no option 'top_kk'"),
        (lambda: edge.run(e2e.bundle, tmp_path / "no-such-video.avi"), SourceError, "source="),
        (lambda: edge.push_model(e2e.bundle, "m", "http://127.0.0.1:9", "t", tmp_path / "k"), OptionError, "--key"),
        (lambda: edge.list_models("http://127.0.0.1:9", "t"), HostError, "cannot reach the host"),
    ]
    for call, kind, message in cases:
        with pytest.raises(kind) as e:
            call()
        assert message in str(e.value) and isinstance(e.value, EdgeError) and "\n" not in str(e.value), str(e.value)


def test_the_cli_says_each_in_one_line_with_exit_2(tmp_path):
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a model at all")
    r = edge_cli("eval", broken, "--data", tmp_path, "--labels", tmp_path / "labels.txt")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
