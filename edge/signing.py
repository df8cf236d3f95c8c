"""Signed model releases: who made a bundle, and that its files are the ones they made.

A release names every file of a bundle (`Bundle.files`) with its size and sha256, and is signed with an Ed25519
key (the `cryptography` package: never by hand). The private key stays where models are built; a device trusts
only the public keys it was given (`--trust`), so neither the host nor anything on the path between can hand it
another file. What is signed is the release's canonical JSON (keys sorted, no spaces); the host stores it and the
signature as they came, and adds the version it gives them beside, not inside.
"""

import base64
import hashlib
import json
import os
from pathlib import Path

from edge.bundle import read_bundle
from edge.errors import EdgeError, ModelError, OptionError
from edge.report import SHA256  # a device fetches each file by it: /api/v1/files/SHA256
from edge.version import install_hint

RELEASE_VERSION = 1  # of the release document a device reads
PRIVATE, PUBLIC = "edge-sign.key", "edge-sign.pub"
MAX_FILES = 64  # a bundle has a handful; more is a hostile document, not a model


def _crypto():
    """cryptography's Ed25519 and PEM serialization, or a one-line error that says how to get them."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ModuleNotFoundError:
        raise EdgeError(
            f"signing and verifying models needs the cryptography package: {install_hint('follow')}"
        ) from None
    return ed25519, serialization, InvalidSignature


def create_keys(out) -> tuple[Path, Path]:
    """A new key pair in folder `out` (made if new): the private key readable by its owner only, from its first
    byte; an existing pair is never replaced (devices trust its public half)."""
    ed25519, serialization, _ = _crypto()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OptionError(f"--out {out} is a file: give a folder for the key pair")
    private, public = out / PRIVATE, out / PUBLIC
    if private.exists() or public.exists():
        raise OptionError(
            f"{out} already holds a key pair: devices trust its public key, so it is kept; give another "
            "folder for a new one"
        )
    out.mkdir(parents=True, exist_ok=True)
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write_new(private, pem, 0o600)
    _write_new(
        public,
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        0o644,
    )
    return private, public


def _write_new(path: Path, data: bytes, mode: int) -> None:
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def load_private_key(path):
    ed25519, serialization, _ = _crypto()
    return _load_key(
        path,
        "--key",
        PRIVATE,
        "an unencrypted PEM private key",
        lambda data: serialization.load_pem_private_key(data, password=None),
        ed25519.Ed25519PrivateKey,
    )


def load_public_key(path):
    ed25519, serialization, _ = _crypto()
    return _load_key(
        path, "--trust", PUBLIC, "a PEM public key", serialization.load_pem_public_key, ed25519.Ed25519PublicKey
    )


def _load_key(path, option: str, name: str, what: str, parse, kind):
    how = f"give the {name} 'edge keys create' wrote"
    try:
        key = parse(Path(path).read_bytes())
    except OSError as e:
        raise OptionError(f"{option} {path}: cannot read it ({e.strerror}): {how}") from None
    except (ValueError, TypeError):
        raise OptionError(f"{option} {path} is not {what}: {how}") from None
    if not isinstance(key, kind):
        raise OptionError(f"{option} {path} is not an Ed25519 key: {how}")
    return key


def key_id(public_key) -> str:
    """A short name for a public key, for messages and the host's records: sha256 of its raw bytes, 16 hex."""
    _, serialization, _ = _crypto()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def canonical(document: dict) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def release_of(bundle_path) -> dict:
    """The release document of a bundle folder: every file it is made of, with size and sha256."""
    bundle = read_bundle(bundle_path)
    files = {}
    for name in bundle.files:
        data = (bundle.path / name).read_bytes()
        files[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return {"format_version": RELEASE_VERSION, "labels": bundle.labels, "files": files}


def sign_bundle(bundle_path, key_path) -> dict:
    """The bundle's release and its signature: {"release", "key_id", "signature"} (the signature base64)."""
    key = load_private_key(key_path)
    release = release_of(bundle_path)
    return {
        "release": release,
        "key_id": key_id(key.public_key()),
        "signature": base64.b64encode(key.sign(canonical(release))).decode("ascii"),
    }


def verify(signed, trusted: list, where: str = "the release") -> dict:
    """The release, if `signed` ({"release", "signature"}) is signed by one of the `trusted` public keys and holds
    a well-formed list of files; else one EdgeError that says which."""
    _, _, InvalidSignature = _crypto()
    release = check_release(signed, where)
    try:
        signature = base64.b64decode(signed["signature"], validate=True)
    except (KeyError, TypeError, ValueError):
        raise ModelError(f"{where} has no readable signature: push it again with 'edge models push --key'") from None
    for key in trusted:
        try:
            key.verify(signature, canonical(release))
            return release
        except InvalidSignature:
            continue
    raise ModelError(
        f"{where} is not signed by a trusted key (trusted: {', '.join(key_id(k) for k in trusted)}; "
        f"signed as {str(signed.get('key_id'))[:16]!r}): push it signed with a key the device trusts, "
        "or give the device that key's public half with --trust"
    )


def check_release(signed, where: str) -> dict:
    """The release document's shape, before anything in it is used."""
    release = signed.get("release") if isinstance(signed, dict) else None
    if not isinstance(release, dict) or release.get("format_version") != RELEASE_VERSION:
        version = release.get("format_version") if isinstance(release, dict) else None
        raise ModelError(
            f"{where} is not a release this edge reads (format_version {version!r}, this edge reads "
            f"{RELEASE_VERSION}): upgrade edge on the device, or push the bundle with this edge"
        )
    files = release.get("files")
    if not (
        isinstance(files, dict)
        and 0 < len(files) <= MAX_FILES
        and all(
            _safe_name(name)
            and isinstance(facts, dict)
            and _count(facts.get("bytes"))
            and isinstance(facts.get("sha256"), str)
            and SHA256.fullmatch(facts["sha256"]) is not None
            for name, facts in files.items()
        )
    ):
        raise ModelError(
            f"{where} does not list its files as name: {{bytes, sha256}} (plain names, at most "
            f"{MAX_FILES}): push the bundle again with 'edge models push'"
        )
    return release


def _safe_name(name) -> bool:
    """A plain file name in the bundle's folder: nothing that reaches out of it."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= 255
        and name not in (".", "..")
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
    )


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_files(folder, release: dict) -> None:
    """Every file the release names is in `folder` with its size and sha256; a file of another size is named
    before it is read whole."""
    folder = Path(folder)
    for name, facts in release["files"].items():
        path = folder / name
        try:
            size = path.stat().st_size
            if size != facts["bytes"]:
                raise ModelError(
                    f"{path} is {size} bytes; the signed release says {facts['bytes']}: it was changed "
                    "or cut short; download it again"
                )
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except FileNotFoundError:
            raise ModelError(f"{path} is missing: the signed release names it; download the release again") from None
        if digest != facts["sha256"]:
            raise ModelError(
                f"{path} does not match its signed sha256 ({digest[:12]}, signed {facts['sha256'][:12]}): "
                "it was changed after signing; download it again"
            )
