"""`edge package`: everything a device needs, in one .tar.gz, to go from a fresh OS to `edge run` as a
service: the bundle, edge's device install as a wheel (every layer but the host's: no convert, no
server, no compiler wrapper, no TensorFlow), a setup script, a systemd unit and a config file.
"""

import base64
import hashlib
import io
import re
import tarfile
import time
import zipfile
from importlib.metadata import PackageNotFoundError, distribution
from importlib.util import find_spec
from pathlib import Path

from edge.bundle import read_bundle
from edge.calls import CallOptions
from edge.devices.profiles import IMX500_CONVERTER, check_model, get_profile
from edge.errors import EdgeError
from edge.files import check_writable, write_atomic
from edge.layers import LAYERS, on_device
from edge.report import check_name
from edge.version import DISTRIBUTION

TEMPLATES = Path(__file__).with_name("templates")


# edge's extras a device may need, each by the `edge run` option that needs it: the wheel names their requirements,
# and setup.sh installs those of the extras whose option is in the packaged run's arguments.
EXTRAS = {
    "follow": "--follow-models",  # cryptography, to verify the model versions it follows
    "mqtt": "--publish",  # paho-mqtt, to publish its calls to a broker
}
# What edge run takes from its environment, edge.conf, and never from --args, which lands on the service's command
# line, which ps shows to every user: the source (a stream URL may carry a password), the token, the broker's password
# and a webhook's URL (often its own secret). Each is edge package's own option; the value: the environment variable
# edge package also reads it from, if any.
SECRETS = {"--source": None, "--token": None, "--mqtt-password": "EDGE_MQTT_PASSWORD", "--webhook": "EDGE_WEBHOOK"}


def device_requirements() -> list[str]:
    """edge's own requirements without extras: what a device install brings."""
    return [r for r in _distribution().requires or [] if "extra ==" not in r]


def extra_requirements(extra: str) -> list[str]:
    """The requirements of one of edge's extras, as the wheel names them (`pip install WHEEL[mqtt]`)."""
    return [r for r in _distribution().requires or [] if f'extra == "{extra}"' in r]


def _distribution():
    try:
        return distribution(DISTRIBUTION)
    except PackageNotFoundError:
        raise EdgeError(
            f"edge package builds the device install from the installed {DISTRIBUTION}, and it is not "
            "installed here: pip install -e . in a clone of edge"
        ) from None


def device_modules() -> dict[str, bytes]:
    """The device layers' source files, by their path in the wheel (edge/runner.py, edge/eval/metrics.py, ...).
    Installed from a wheel, edge/eval lies inside edge/: each file is read once, under its own package."""
    files = {}
    for package in (name for names in LAYERS.values() for name in names if on_device(name)):
        spec = find_spec(package)
        for root in (spec.submodule_search_locations or []) if spec else []:
            for file in sorted(Path(root).rglob("*.py")):
                parts = (*package.split("."), *file.relative_to(root).with_suffix("").parts)
                module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
                name = "/".join((*package.split("."), *file.relative_to(root).parts))
                if "__pycache__" not in file.parts and on_device(module) and name not in files:
                    files[name] = file.read_bytes()
    return files


def device_wheel() -> tuple[str, bytes]:
    """(file name, bytes) of a wheel of edge's device layers, with the installed distribution's own
    name, version, requirements (extras left out) and commands."""
    dist = _distribution()
    meta = dist.metadata
    tag = f"{meta['Name'].replace('-', '_')}-{meta['Version']}"
    metadata = "".join(
        f"{key}: {meta[key]}\n" for key in ("Name", "Version", "Summary", "Requires-Python") if meta[key]
    )
    files = {
        **device_modules(),
        f"{tag}.dist-info/METADATA": (
            "Metadata-Version: 2.1\n"
            + metadata
            + "".join(f"Requires-Dist: {r}\n" for r in device_requirements())
            + "".join(
                f"Provides-Extra: {extra}\n" + "".join(f"Requires-Dist: {r}\n" for r in extra_requirements(extra))
                for extra in EXTRAS
            )
        ).encode(),
        f"{tag}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: edge package\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
        f"{tag}.dist-info/entry_points.txt": "".join(
            f"[{group}]\n" + "".join(f"{e.name} = {e.value}\n" for e in dist.entry_points if e.group == group)
            for group in sorted({e.group for e in dist.entry_points})
        ).encode(),
    }
    record = f"{tag}.dist-info/RECORD"
    lines = [
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for name, data in files.items()
    ]
    files[record] = ("\n".join([*lines, f"{record},,"]) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            wheel.writestr(info, data, zipfile.ZIP_DEFLATED)
    return f"{tag}-py3-none-any.whl", buffer.getvalue()


def _fill(template: str, values: dict) -> str:
    text = (TEMPLATES / template).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    left = re.findall(r"@[A-Z_]+@", text)
    assert not left, f"{template}: unfilled {left}"  # a template and this table out of step is a bug
    return text


def _conf_value(value: str, option: str) -> str:
    """A value for a systemd EnvironmentFile: quoted when it has spaces (a GStreamer pipeline)."""
    if any(c in value for c in '"\\\n'):
        # the option, not its value: that may be the token or a stream password
        raise EdgeError(f"{option}: quotes, backslashes and newlines cannot go into edge.conf")
    return f'"{value}"' if re.search(r"\s", value) else value


def package(
    bundle_path,
    device: str,
    out,
    source: str | None = None,
    report_to: str = "",
    device_id: str = "",
    token: str = "",
    args: str = "",
    log=None,
    trust=None,
    mqtt_password: str = "",
    webhook: str = "",
) -> dict:
    """Write the package; returns what went into it. `source`: what edge run reads [the AI Camera's sensor for
    rpi-ai-camera, else camera 0]; `trust`: a public key (edge-sign.pub): the device follows the model
    versions the host names, signed with it (edge run --follow-models); `mqtt_password`: the password of the
    user of `--publish mqtt://USER@HOST/PREFIX` in `args`; `webhook`: a URL the calls are POSTed to. Like the
    token and the source, both go into edge.conf only."""
    log = log or (lambda message: None)
    profile = get_profile(device)
    bundle = read_bundle(bundle_path)
    sensor = profile.compiler == IMX500_CONVERTER
    if sensor and bundle.imx500_path is None:
        raise EdgeError(
            f"{bundle.path} has no network for the AI Camera's sensor (packerOut.zip): convert it with "
            f"edge convert ... --device {profile.name}"
        )
    source = source if source is not None else "imx500" if sensor else "0"
    out = check_writable(out, "--out", (".tar.gz", ".tgz"))
    if not report_to.startswith(("http://", "https://")):
        raise EdgeError("--report-to: give the edge serve host's URL, e.g. http://192.168.1.10:8765")
    check_name(device_id)
    _check_args(args)
    _check_calls(args, mqtt_password, webhook)
    top = out.name.removesuffix(".tar.gz").removesuffix(".tgz")
    warnings = []
    quantization = bundle.manifest.get("quantization", {})
    check_model(profile, quantization.get("mode"), quantization.get("io_type"), str(bundle.path))
    if profile.delegate == "edgetpu":
        args = f"--delegate edgetpu {args}".strip()
        if bundle.edgetpu_path is None:
            warnings.append(
                f"{bundle.path} has no model compiled for the Edge TPU: it will run on the CPU. "
                f"compile it first where edgetpu_compiler is installed: edge devices compile {bundle.path}"
            )
    if profile.threads:
        args = f"--threads {profile.threads} {args}".strip()
    if not token:
        warnings.append(f"no --token: put it in /etc/edge/edge.conf on the device (edge token create {device_id})")
    key = _public_key(trust) if trust else None
    if key:
        args = f"{args} --follow-models --trust {TRUSTED} --models-dir /var/lib/edge/models".strip()

    extras = [extra for extra, option in EXTRAS.items() if option in _options(args)]
    wheel_name, wheel = device_wheel()
    files: dict[str, tuple[str | bytes, int]] = {
        "setup.sh": (
            _fill(
                "setup.sh",
                {
                    "WHEEL": wheel_name,
                    "DEVICE": profile.name,
                    "ARCH": profile.arch.replace(" or ", " "),
                    "APT": " ".join(profile.apt),
                    "GROUPS": " ".join(profile.groups),
                    "EDGETPU": "yes" if profile.delegate == "edgetpu" else "no",
                    "EXTRAS": f"[{','.join(extras)}]" if extras else "",
                    "IMX500": "yes" if sensor else "no",
                },
            ),
            0o755,
        ),
        "edge-run.service": (_fill("edge-run.service", {"GROUPS": " ".join(profile.groups)}), 0o644),
        "edge.conf": (
            _fill(
                "edge.conf",
                {
                    "SOURCE": _conf_value(source, "--source"),
                    "REPORT_TO": _conf_value(report_to, "--report-to"),
                    "TOKEN": _conf_value(token, "--token"),
                    "DEVICE_ID": device_id,
                    "ARGS": _conf_value(args, "--args"),
                    "MQTT_PASSWORD": _conf_value(mqtt_password, "--mqtt-password"),
                    "WEBHOOK": _conf_value(webhook, "--webhook"),
                },
            ),
            0o600,
        ),
        "README.txt": (_readme(profile, bundle, device_id, out.name, top), 0o644),
        **({"edge-sign.pub": (key, 0o644)} if key else {}),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, (text, mode) in files.items():
            _add(tar, f"{top}/{name}", text if isinstance(text, bytes) else text.encode(), mode)
        _add(tar, f"{top}/{wheel_name}", wheel, 0o644)
        for name in bundle.files:
            _add(tar, f"{top}/bundle/{name}", _bundle_file(bundle.path, name), 0o644)
    write_atomic(out, buffer.getvalue(), private=True)  # it holds the device's token
    for warning in warnings:
        log(f"warning: {warning}")
    return {
        "package": str(out),
        "bytes": out.stat().st_size,
        "device": profile.name,
        "bundle": str(bundle.path),
        "wheel": wheel_name,
        "extras": extras,
        "top": top,
        "holds_token": bool(token),
        "warnings": warnings,
    }


TRUSTED = "/etc/edge/edge-sign.pub"  # where setup.sh puts the key the device trusts


def _public_key(path) -> bytes:
    """The key file's bytes, once it is known to be an Ed25519 public key (a private key here would ship it)."""
    from edge.signing import load_public_key

    load_public_key(path)
    return Path(path).read_bytes()


def _options(args: str) -> list[str]:
    """The options in edge run's arguments, `--publish=URL` as `--publish`: systemd splits $EDGE_ARGS at
    whitespace, quotes or not."""
    return [word.split("=", 1)[0] for word in args.split() if word.startswith("--")]


def _check_args(args: str) -> None:
    """EDGE_ARGS lands on the service's command line, which ps shows to every user: the secrets go into
    edge.conf on their own."""
    for option in _options(args):
        if option in SECRETS:
            env = f" (or ${SECRETS[option]})" if SECRETS[option] else ""
            raise EdgeError(f"--args {option}: give it as edge package {option}{env}, which keeps it out of ps")


def _value(args: str, option: str) -> str | None:
    """The value of `option` in edge run's arguments (`--publish URL` or `--publish=URL`), or None."""
    words = args.split()
    for i, word in enumerate(words):
        name, equals, value = word.partition("=")
        if name == option:
            return value if equals else (words[i + 1] if i + 1 < len(words) else None)
    return None


def _check_calls(args: str, mqtt_password: str, webhook: str) -> None:
    """edge run's own checks of where its calls go, here: on the device a mistake would only restart the
    service again and again. Neither the password nor the webhook's URL is ever named in a message."""
    publish = _value(args, "--publish")
    if mqtt_password and not publish:
        raise EdgeError(
            "--mqtt-password ($EDGE_MQTT_PASSWORD) is the password of --publish's user: add "
            "--args '--publish mqtt://USER@HOST/PREFIX', or leave the password out"
        )
    if publish or webhook:
        CallOptions(publish=publish, mqtt_password=mqtt_password or None, webhook=webhook or None)


def _bundle_file(folder: Path, name: str) -> bytes:
    """A file of the bundle's manifest, as its bytes: a link is followed only within the bundle's folder (one
    pointing out of it would pack whatever it points at, a secrets file as well as a model)."""
    file = folder / name
    if file.is_symlink() and not file.resolve().is_relative_to(folder.resolve()):
        raise EdgeError(
            f"{file} is a link to {file.resolve()}, outside the bundle: copy the file into the bundle "
            "folder (edge package packs the bundle's own files only)"
        )
    try:
        return file.read_bytes()
    except OSError as e:
        raise EdgeError(f"{file} cannot be read ({e.strerror}): copy the whole bundle folder again") from None


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _readme(profile, bundle, device_id: str, archive: str, top: str) -> str:
    return f"""edge package for {profile.title} ({profile.name}), device {device_id}
bundle: {bundle.path.name}, {bundle.manifest["backbone"]["name"]}, {len(bundle.labels)} classes

On the device ({profile.os}, Python {profile.python}):
  tar xzf {archive} && cd {top} && sudo ./setup.sh
Then: journalctl -u edge-run -f          (what it sees)
      sudo nano /etc/edge/edge.conf      (source, host, token, more options), then sudo systemctl restart edge-run
Camera: {profile.camera}
{profile.notes}

Secrets: the device's token, the source (a stream URL may carry a password), the MQTT broker's password
and the webhook's URL live only in /etc/edge/edge.conf, root's and mode 0600; the service hands them to
edge run in its environment, never on its command line, which ps shows to every user.
{archive} and {top}/edge.conf carry them too (both 0600): delete them once setup.sh has run.
"""
