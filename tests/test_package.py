"""`edge package`: what goes into the .tar.gz, that its script and unit pass their checkers, and that
the device wheel inside it installs into a fresh venv as one import name and runs `edge eval` with no
TensorFlow."""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from edge.bundle import read_bundle
from edge.eval.evaluate import evaluate
from edge.model import load_model
from edge.render import package_text
from edge.signing import create_keys
from edge.version import VERSION
from tests.bundles import rewritten
from tests.cli import edge_cli
from tests.device import new_venv, top_level_names

WHEEL = f"edge_vision-{VERSION}-py3-none-any.whl"


@pytest.fixture(scope="module")
def packed(e2e, tmp_path_factory):
    out = tmp_path_factory.mktemp("package")
    r = edge_cli(
        "package",
        e2e.bundle,
        "--device",
        "rpi5",
        "--out",
        out / "pi-kitchen.tar.gz",
        "--report-to",
        "http://192.168.1.10:8765",
        "--device-id",
        "pi-kitchen",
        "--token",
        "secret-token",
        "--source",
        "libcamerasrc ! videoconvert ! appsink",
        "--args",
        "--truth 2",
    )
    assert r.returncode == 0, r.stderr
    with tarfile.open(out / "pi-kitchen.tar.gz") as tar:
        tar.extractall(out, filter="data")
    return out / "pi-kitchen"


def test_package_contents(packed, e2e):
    names = {str(p.relative_to(packed)) for p in packed.rglob("*") if p.is_file()}
    assert names == {
        "setup.sh",
        "edge-run.service",
        "edge.conf",
        "README.txt",
        WHEEL,
        "bundle/model.tflite",
        "bundle/labels.txt",
        "bundle/edge.json",
        *(f"bundle/check-{n}.png" for n in range(4)),
    }
    with zipfile.ZipFile(packed / WHEEL) as wheel:
        inside = set(wheel.namelist())
        metadata = wheel.read(f"edge_vision-{VERSION}.dist-info/METADATA").decode()
        commands = wheel.read(f"edge_vision-{VERSION}.dist-info/entry_points.txt").decode()
    assert {"edge/runner.py", "edge/cli.py", "edge/eval/metrics.py", "edge/devices/profiles.py"} <= inside
    # the host side stays home: no convert, no server, no compiler wrapper, no packager
    assert not [
        n
        for n in inside
        if n.startswith(("edge/convert", "edge/server", "edge/devices/edgetpu", "edge/devices/package"))
        or "__pycache__" in n
    ]
    assert "Name: edge-vision" in metadata and "Requires-Dist: ai-edge-litert" in metadata
    assert "tensorflow" not in metadata and "edge = edge.cli:main" in commands
    conf = dict(
        line.split("=", 1)
        for line in (packed / "edge.conf").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert conf["EDGE_SOURCE"] == '"libcamerasrc ! videoconvert ! appsink"'
    assert conf["EDGE_TOKEN"] == "secret-token" and conf["EDGE_DEVICE_ID"] == "pi-kitchen"
    assert conf["EDGE_ARGS"] == '"--threads 4 --truth 2"'
    assert (packed / "edge.conf").stat().st_mode & 0o077 == 0  # the token is not for other users
    assert (packed / "setup.sh").stat().st_mode & 0o100
    assert json.loads((packed / "bundle/edge.json").read_text())["model"]["sha256"] == e2e.model["sha256"]


def test_a_following_device_s_package_carries_the_key_and_the_follow_extra(e2e, tmp_path):
    """--trust: the public key ships beside a unit that follows the host's model versions; the wheel names the
    follow extra (cryptography), which setup.sh installs; a private key given by mistake is refused."""
    private, public = create_keys(tmp_path / "keys")
    args = (
        "package",
        e2e.bundle,
        "--device",
        "rpi5",
        "--out",
        tmp_path / "pi.tar.gz",
        "--report-to",
        "http://192.168.1.10:8765",
        "--device-id",
        "pi-kitchen",
    )
    r = edge_cli(*args, "--trust", private)
    assert r.returncode == 2 and "--trust" in r.stderr and "is not a PEM public key" in r.stderr
    assert not (tmp_path / "pi.tar.gz").exists()
    assert edge_cli(*args, "--trust", public).returncode == 0
    with tarfile.open(tmp_path / "pi.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    packed = tmp_path / "pi"
    assert (packed / "edge-sign.pub").read_bytes() == public.read_bytes()
    assert (
        "--follow-models --trust /etc/edge/edge-sign.pub --models-dir /var/lib/edge/models"
        in (packed / "edge.conf").read_text()
    )
    assert {"cryptography"} <= setup_installs(packed) and "paho-mqtt" not in setup_installs(packed)
    assert subprocess.run(["bash", "-n", packed / "setup.sh"], capture_output=True).returncode == 0
    with zipfile.ZipFile(packed / WHEEL) as wheel:
        metadata = wheel.read(f"edge_vision-{VERSION}.dist-info/METADATA").decode()
        assert "edge/follow.py" in wheel.namelist() and "edge/signing.py" in wheel.namelist()
    assert "Provides-Extra: follow" in metadata and 'Requires-Dist: cryptography>=41; extra == "follow"' in metadata


def setup_installs(packed: Path) -> set[str]:
    """The distributions setup.sh's pip install asks for: the wheel's requirements, those of the extras in its
    EXTRAS as well, read the way pip reads them (each requirement's marker, with `extra` set to each)."""
    setup = (packed / "setup.sh").read_text()
    assert f'"$PREFIX/venv/bin/pip" install --quiet "./{WHEEL}$EXTRAS"' in setup
    line = re.search(r'^EXTRAS="(?:\[([\w,]+)\])?"', setup, re.M)
    assert line, "setup.sh sets no EXTRAS"
    extras = line[1] or ""
    with zipfile.ZipFile(packed / WHEEL) as wheel:
        metadata = wheel.read(f"edge_vision-{VERSION}.dist-info/METADATA").decode()
    wanted = [Requirement(line.split(": ", 1)[1]) for line in metadata.splitlines() if line.startswith("Requires-Dist")]
    return {
        r.name for r in wanted if not r.marker or any(r.marker.evaluate({"extra": e}) for e in ["", *extras.split(",")])
    }


def test_a_run_that_calls_nothing_brings_no_extra(packed):
    """The packed run neither follows model versions nor publishes: no cryptography, no paho-mqtt, and edge.conf's
    lines for the calls' secrets are empty (edge run takes an empty variable for none)."""
    assert 'EXTRAS=""' in (packed / "setup.sh").read_text()
    assert {"numpy", "click"} <= setup_installs(packed)
    assert not setup_installs(packed) & {"cryptography", "paho-mqtt"}
    conf = systemd_conf((packed / "edge.conf").read_text())
    assert conf["EDGE_MQTT_PASSWORD"] == "" and conf["EDGE_WEBHOOK"] == ""


def test_setup_script_passes_bash_and_shellcheck(packed):
    assert subprocess.run(["bash", "-n", packed / "setup.sh"], capture_output=True).returncode == 0
    if shutil.which("shellcheck"):
        r = subprocess.run(["shellcheck", packed / "setup.sh"], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_service_unit_passes_systemd_analyze(packed, tmp_path):
    # verify insists that ExecStart exists: point it at this machine's edge instead of /opt/edge's
    edge = shutil.which("edge") or str(Path(sys.executable).with_name("edge"))
    unit = tmp_path / "edge-run.service"
    unit.write_text((packed / "edge-run.service").read_text().replace("/opt/edge/venv/bin/edge", edge))
    r = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True)
    assert r.returncode == 0 and not r.stderr.strip() and not r.stdout.strip(), r.stderr


def test_the_device_wheel_installs_one_name_and_evaluates_without_tensorflow(
    packed, device_site, digits, e2e, tmp_path
):
    """setup.sh's pip install, in a fresh venv (its dependencies come from the device site: no download)."""
    python, site = new_venv(tmp_path / "venv")
    before = top_level_names(site)
    r = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", packed / WHEEL],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert top_level_names(site) - before == {"edge"}
    (site / "device-deps.pth").write_text(f"{device_site}\n")
    r = subprocess.run(
        [tmp_path / "venv" / "bin" / "edge", "eval", packed / "bundle", "--data", digits, "--json"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["confusion_matrix"] == evaluate(e2e.bundle, digits).report.confusion_matrix
    r = subprocess.run(
        [tmp_path / "venv" / "bin" / "edge", "convert", "--data", digits], capture_output=True, text=True
    )
    assert r.returncode == 2 and "runs on a host, and this is a device install" in r.stderr, r.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["--device", "rpi5", "--report-to", "192.168.1.10"], "give the edge serve host's URL"),
        (["--device", "rpi9"], "did you mean"),
        (["--device", "rpi5", "--out", "pi.zip"], "give a file name ending in .tar.gz"),
        (["--device", "rpi5", "--device-id", "pi kitchen"], "--device-id 'pi kitchen'"),
        (["--device", "rpi5", "--source", 'rtsp://cam/"1"'], "--source: quotes, backslashes and newlines cannot go"),
        (
            ["--device", "rpi5", "--args", "--truth 2 --source=rtsp://u:p@cam/1"],
            "--args --source: give it as edge package",
        ),
        (
            ["--device", "rpi5", "--args", "--publish mqtt://edge@h/edge --mqtt-password hunter2"],
            "--args --mqtt-password: give it as edge package --mqtt-password (or $EDGE_MQTT_PASSWORD), which keeps",
        ),
        (
            ["--device", "rpi5", "--args", "--webhook=https://hooks.example/hunter2"],
            "--args --webhook: give it as edge package --webhook (or $EDGE_WEBHOOK), which keeps it out of ps",
        ),
        (["--device", "rpi5", "--args", "--publish mqtt://edge:hunter2@h/edge"], "leave the password out of the URL"),
        (["--device", "rpi5", "--mqtt-password", "hunter2"], "add --args '--publish mqtt://USER@HOST/PREFIX'"),
        (
            ["--device", "rpi5", "--mqtt-password", "hunter2", "--args", "--publish mqtt://h/edge"],
            "is the password of --publish's user",
        ),
        (["--device", "rpi5", "--webhook", "ftp://h/hunter2"], "--webhook: give an http(s):// URL"),
    ],
)
def test_package_refuses_bad_options_and_writes_nothing(e2e, tmp_path, args, message):
    base = {"--out": str(tmp_path / "p.tar.gz"), "--report-to": "http://h:8765", "--device-id": "pi-kitchen"}
    given = dict(zip(args[::2], args[1::2], strict=True))
    r = edge_cli("package", e2e.bundle, *[x for k, v in {**base, **given}.items() for x in (k, v)], cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) == 1 and "hunter2" not in r.stdout + r.stderr  # a secret is never echoed
    assert list(tmp_path.iterdir()) == []


def unpack(archive: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(archive.parent, filter="data")
    return archive.parent / archive.name.removesuffix(".tar.gz")


def test_a_coral_package_runs_on_the_edge_tpu_and_may_use_the_plugdev_device(e2e, tmp_path):
    args = ("--report-to", "http://h:8765", "--device-id", "coral-1", "--token", "t")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    r = edge_cli("package", e2e.bundle, "--device", "coral-usb", "--out", tmp_path / "a" / "coral.tar.gz", *args)
    assert r.returncode == 0 and "no model compiled for the Edge TPU: it will run on the CPU" in r.stderr
    packed = unpack(tmp_path / "a" / "coral.tar.gz")
    assert 'EDGE_ARGS="--threads 4 --delegate edgetpu"' in (packed / "edge.conf").read_text()
    assert "SupplementaryGroups=video plugdev" in (packed / "edge-run.service").read_text()
    assert 'GROUPS_NEEDED="video plugdev"' in (packed / "setup.sh").read_text()

    # a bundle with its compiled model (here the same bytes: no compiler here) packs it, and no warning
    bundle = read_bundle(e2e.bundle)
    compiled = rewritten(
        bundle.path, tmp_path / "compiled", compiled=bundle.model_path.read_bytes(), edgetpu={"compiled": True}
    )
    r = edge_cli("package", compiled.path, "--device", "coral-usb", "--out", tmp_path / "b" / "coral.tar.gz", *args)
    assert r.returncode == 0 and "no model compiled" not in r.stderr, r.stderr
    assert (unpack(tmp_path / "b" / "coral.tar.gz") / "bundle" / "model_edgetpu.tflite").is_file()
    # (the compiled bytes here are the CPU model's, so the delegate is left out of loading)
    from edge.model import _locate

    assert _locate(compiled.path, None, None, "edgetpu")[0] == compiled.edgetpu_path
    assert load_model(compiled.path).path == compiled.model_path


TOKEN, PASSWORD = "tok-3f9a1c", "cam-pass-42"
STREAM = f"rtsp://viewer:{PASSWORD}@127.0.0.1:1/stream1"  # refused at once: nothing listens on port 1


@pytest.fixture(scope="module")
def secret_package(e2e, tmp_path_factory):
    """A package with a token and a stream password, written over an older world-readable one, under the most
    permissive umask (inherited by the command): its mode must come from edge, not from the umask."""
    out = tmp_path_factory.mktemp("secret") / "pi-door.tar.gz"
    out.write_bytes(b"an older package")
    out.chmod(0o644)
    umask = os.umask(0)
    try:
        r = edge_cli(
            "package",
            e2e.bundle,
            "--device",
            "rpi5",
            "--out",
            out,
            "--report-to",
            "http://127.0.0.1:1",
            "--device-id",
            "pi-door",
            "--token",
            TOKEN,
            "--source",
            STREAM,
        )
    finally:
        os.umask(umask)
    assert r.returncode == 0, r.stderr
    with tarfile.open(out) as tar:
        files = {m.name.split("/", 1)[1]: (tar.extractfile(m).read(), m.mode) for m in tar.getmembers() if m.isfile()}
    return out, r, files


def test_the_package_is_0600_and_written_whole(secret_package):
    out, r, _ = secret_package
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert os.listdir(out.parent) == [out.name]  # the temporary file was renamed, not left
    assert f"wrote {out} (" in r.stdout
    assert "0600: it holds the device's token; copy it with scp and delete it" in r.stdout
    assert "0600" in package_text(
        {"package": "p.tar.gz", "bytes": 1, "device": "rpi5", "top": "p", "holds_token": False}
    )


def test_the_token_and_source_are_only_in_edge_conf(secret_package):
    _, r, files = secret_package
    conf, mode = files["edge.conf"]
    assert TOKEN.encode() in conf and PASSWORD.encode() in conf and mode == 0o600
    assert {"setup.sh", "edge-run.service", "README.txt", WHEEL} <= set(files)
    assert [name for name, (data, _) in files.items() if TOKEN.encode() in data or PASSWORD.encode() in data] == [
        "edge.conf"
    ]
    assert TOKEN not in r.stdout + r.stderr and PASSWORD not in r.stdout + r.stderr
    readme = files["README.txt"][0].decode()
    assert "/etc/edge/edge.conf, root's and mode 0600" in readme and "pi-door.tar.gz and pi-door/edge.conf" in readme
    setup = files["setup.sh"][0].decode()
    assert "install -o root -g root -m 600 edge.conf /etc/edge/edge.conf" in setup
    # setup.sh only tests for a token (grep -q); it never echoes edge.conf's values
    assert [line for line in setup.splitlines() if re.search("EDGE_(TOKEN|SOURCE|MQTT_PASSWORD|WEBHOOK)", line)] == [
        "if grep -q '^EDGE_TOKEN=.\\+' /etc/edge/edge.conf; then",
        "  echo \"setup: put the device's token in /etc/edge/edge.conf (EDGE_TOKEN=...), then: systemctl enable --now "
        'edge-run"',
    ]


def systemd_conf(text: str) -> dict:
    """An EnvironmentFile as systemd reads it: KEY=VALUE lines, one pair of double quotes taken off."""
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key: value.removeprefix('"').removesuffix('"') for key, value in pairs}


def systemd_argv(exec_start: str, env: dict) -> list[str]:
    """ExecStart's words as systemd expands them: ${VAR} as one word, $VAR split at whitespace."""
    argv = []
    for word in exec_start.split():
        if one := re.fullmatch(r"\$\{(\w+)\}", word):
            argv.append(env.get(one[1], ""))
        elif split := re.fullmatch(r"\$(\w+)", word):
            argv += env.get(split[1], "").split()
        else:
            argv.append(word)
    return argv


def test_the_service_command_line_carries_no_secret_and_edge_run_takes_them_from_the_environment(
    secret_package, e2e, tmp_path
):
    """ps shows every process's command line to every user: the unit's ExecStart, as systemd expands it, holds
    neither the token nor the stream's password, and `edge run` started that way with edge.conf as its
    environment still gets both (it reaches the stream, which needs the source, after its reporting checks,
    which need the token)."""
    _, _, files = secret_package
    unit = files["edge-run.service"][0].decode()
    exec_start = next(line.removeprefix("ExecStart=") for line in unit.splitlines() if line.startswith("ExecStart="))
    assert not re.search(r"EDGE_SOURCE|EDGE_TOKEN|--source|--token", exec_start), exec_start
    assert "EnvironmentFile=/etc/edge/edge.conf" in unit
    conf = systemd_conf(files["edge.conf"][0].decode())
    argv = systemd_argv(exec_start, conf)
    assert not [word for word in argv if TOKEN in word or PASSWORD in word]
    # this machine's edge, bundle and outbox for /opt/edge's and /var/lib/edge's
    here = {
        "/opt/edge/venv/bin/edge": [sys.executable, "-m", "edge.cli"],
        "/opt/edge/bundle": [e2e.bundle],
        "/var/lib/edge/outbox.db": [str(tmp_path / "outbox.db")],
    }
    argv = [new for word in argv for new in here.get(word, [word])]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("EDGE_")}, **conf}
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "cannot open stream rtsp://" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_a_package_holds_the_manifest_s_files_only_and_no_link_out_of_the_bundle(e2e, tmp_path):
    """A stray file and a link to a secret beside the bundle's files stay out; a manifest file that is a link
    out of the bundle is refused, and nothing is written."""
    bundle = Path(shutil.copytree(e2e.bundle, tmp_path / "bundle"))
    secret = tmp_path / "secrets.env"
    secret.write_text("AWS_SECRET_ACCESS_KEY=hunter2\n")
    (bundle / "notes.txt").write_text("stray")
    (bundle / "secrets.env").symlink_to(secret)
    out = tmp_path / "pi.tar.gz"
    r = edge_cli(
        "package",
        bundle,
        "--device",
        "rpi5",
        "--out",
        out,
        "--report-to",
        "http://10.0.0.2:8765",
        "--device-id",
        "pi-x",
    )
    assert r.returncode == 0, r.stderr
    with tarfile.open(out) as tar:
        members = {m.name.split("/", 2)[-1]: m for m in tar.getmembers() if "/bundle/" in m.name}
        assert sorted(members) == [*(f"check-{n}.png" for n in range(4)), "edge.json", "labels.txt", "model.tflite"]
        assert all(m.isreg() for m in members.values())
        assert b"hunter2" not in b"".join(tar.extractfile(m).read() for m in members.values())
    moved = tmp_path / "model-elsewhere.tflite"
    (bundle / "model.tflite").rename(moved)
    (bundle / "model.tflite").symlink_to(moved)
    out.unlink()
    r = edge_cli(
        "package",
        bundle,
        "--device",
        "rpi5",
        "--out",
        out,
        "--report-to",
        "http://10.0.0.2:8765",
        "--device-id",
        "pi-x",
    )
    assert r.returncode == 2 and r.stderr == (
        f"error: {bundle / 'model.tflite'} is a link to {moved}, outside the "
        "bundle: copy the file into the bundle folder (edge package packs the "
        "bundle's own files only)\n"
    ), r.stderr
    assert not out.exists()


BROKER_PASSWORD, HOOK = "mqtt-pass-7d2e", "https://hooks.example/api/webhook/kitchen-8c41"


@pytest.fixture(scope="module")
def publishing(e2e, tmp_path_factory):
    """A package whose run publishes its calls to a broker, the broker's password from edge package's environment
    (as edge run's own, $EDGE_MQTT_PASSWORD) and a webhook as edge package's option."""
    out = tmp_path_factory.mktemp("publishing") / "pi-hall.tar.gz"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("EDGE_")}, "EDGE_MQTT_PASSWORD": BROKER_PASSWORD}
    r = subprocess.run(
        [sys.executable, "-m", "edge.cli", "package", e2e.bundle, "--device", "rpi5", "--out", out]
        + ["--report-to", "http://127.0.0.1:1", "--device-id", "pi-hall", "--token", TOKEN, "--webhook", HOOK]
        + ["--args", "--truth 2 --publish mqtt://edge@homeassistant.local/edge"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    return unpack(out), r


def test_a_publishing_run_brings_paho_mqtt(publishing):
    """--publish in the packed run's arguments: setup.sh installs the wheel with its mqtt extra, which the wheel
    names as pyproject does (paho-mqtt)."""
    packed, _ = publishing
    assert 'EXTRAS="[mqtt]"' in (packed / "setup.sh").read_text()
    assert "paho-mqtt" in setup_installs(packed) and "cryptography" not in setup_installs(packed)
    with zipfile.ZipFile(packed / WHEEL) as wheel:
        metadata = wheel.read(f"edge_vision-{VERSION}.dist-info/METADATA").decode()
        assert "edge/mqtt.py" in wheel.namelist()
    assert "Provides-Extra: mqtt" in metadata and 'Requires-Dist: paho-mqtt>=2.0; extra == "mqtt"' in metadata
    assert subprocess.run(["bash", "-n", packed / "setup.sh"], capture_output=True).returncode == 0


def test_the_broker_s_password_and_the_webhook_are_only_in_edge_conf(publishing):
    """Like the token: in edge.conf (0600) and nowhere else in the package, not on the service's command line as
    systemd expands it, and never printed."""
    packed, r = publishing
    conf = systemd_conf((packed / "edge.conf").read_text())
    assert conf["EDGE_MQTT_PASSWORD"] == BROKER_PASSWORD and conf["EDGE_WEBHOOK"] == HOOK
    assert conf["EDGE_ARGS"] == "--threads 4 --truth 2 --publish mqtt://edge@homeassistant.local/edge"
    assert (packed / "edge.conf").stat().st_mode & 0o077 == 0
    holding = [
        str(f.relative_to(packed))
        for f in packed.rglob("*")
        if f.is_file() and (BROKER_PASSWORD.encode() in f.read_bytes() or HOOK.encode() in f.read_bytes())
    ]
    assert holding == ["edge.conf"]
    unit = (packed / "edge-run.service").read_text()
    exec_start = next(line.removeprefix("ExecStart=") for line in unit.splitlines() if line.startswith("ExecStart="))
    assert not [word for word in systemd_argv(exec_start, conf) if BROKER_PASSWORD in word or HOOK in word]
    assert BROKER_PASSWORD not in r.stdout + r.stderr and "hooks.example" not in r.stdout + r.stderr
    assert (
        "the MQTT broker's password\nand the webhook's URL live only in /etc/edge/edge.conf"
        in (packed / "README.txt").read_text()
    )
