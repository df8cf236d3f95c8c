"""Pushing a bundle to `edge serve` as a signed model version (`edge models push`), and listing what it holds.

The bundle is signed here, where its key is (edge.signing); each file goes up under its sha256 unless the host
holds it already (asked with a one-byte Range), then the signed release, which the host numbers NAME@N."""

import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path

from edge.errors import OptionError
from edge.host_client import Refusal, call, call_json, check_url
from edge.server.guard import parse_guard
from edge.signing import sign_bundle


@dataclass(frozen=True)
class PushResult:
    name: str
    version: int
    new: bool  # False: the host held this very release already, under this number
    key_id: str
    files: int
    bytes_sent: int
    bytes_held: int  # of files the host had already (an unchanged labels.txt, a retried push)

    def to_json(self) -> dict:
        return asdict(self)


def push_model(bundle, name: str, host: str, token: str, key) -> PushResult:
    """Sign `bundle` with the private key at `key` and push it as a new version of `name`."""
    host = check_url(host, "--host")
    signed = sign_bundle(bundle, key)
    sent = held = 0
    for file, facts in signed["release"]["files"].items():
        url = f"{host}/api/v1/files/{facts['sha256']}"
        if _held(url, token):
            held += facts["bytes"]
            continue
        call(
            url,
            token,
            "PUT",
            (Path(bundle) / file).read_bytes(),
            {"Content-Type": "application/octet-stream"},
            f"the host ({file})",
        )
        sent += facts["bytes"]
    answer = call_json(f"{host}/api/v1/models/{urllib.parse.quote(name, safe='')}", token, "POST", signed, "the host")
    return PushResult(
        answer["name"], answer["version"], answer["new"], signed["key_id"], len(signed["release"]["files"]), sent, held
    )


def _held(url: str, token: str) -> bool:
    try:
        call(url, token, headers={"Range": "bytes=0-0"})
    except Refusal as e:
        if e.status == 404:
            return False
        raise
    return True


def list_models(host: str, token: str, name: str | None = None) -> list[dict]:
    host = check_url(host, "--host")
    query = f"?{urllib.parse.urlencode({'name': name})}" if name else ""
    return call_json(f"{host}/api/v1/models{query}", token, what="the host")["models"]


def parse_version(text: str) -> tuple[str, int]:
    """NAME@VERSION, as `edge models push` printed it."""
    name, at, version = str(text).rpartition("@")
    if not at or not name or not version.isdigit() or int(version) < 1:
        raise OptionError(
            f"'{text}': give a model version as NAME@VERSION, e.g. digits@2 (edge models list shows them)"
        )
    return name, int(version)


def start_rollout(
    host: str,
    token: str,
    version: str,
    devices: list | None = None,
    canary: int | None = None,
    watch: float | None = None,
    guard: str | None = None,
    waves: int | None = None,
) -> dict:
    """Roll NAME@VERSION out to `devices` (None: every device that has reported), canaries first."""
    name, number = parse_version(version)
    body = {
        "model": name,
        "version": number,
        "devices": devices,
        "canary": canary,
        "waves": waves,
        "watch": watch,
        "guard": parse_guard(guard).to_json(),
    }
    return call_json(f"{check_url(host, '--host')}/api/v1/rollouts", token, "POST", body, "the host")


def rollout_status(host: str, token: str, model: str | None = None) -> list[dict]:
    query = f"?{urllib.parse.urlencode({'model': model})}" if model else ""
    return call_json(f"{check_url(host, '--host')}/api/v1/rollouts{query}", token, what="the host")["rollouts"]


def abort_rollout(host: str, token: str, model: str) -> dict:
    url = f"{check_url(host, '--host')}/api/v1/rollouts/{urllib.parse.quote(model, safe='')}/abort"
    return call_json(url, token, "POST", {}, "the host")
