"""Model versions the host holds: signed releases (edge.signing) under a name, numbered NAME@1, NAME@2, ... as
they are pushed, and the files they name, kept once each by sha256.

A publisher uploads the files first (each checked against its sha256 as it comes), then the signed release;
the host numbers a release only when it holds every file it names at the size it names, so whatever it has
numbered it can serve back whole. The host does not hold the signing key and need not trust anyone's: the
device verifies. The same release pushed again (a retry after a lost answer) keeps its number.
"""

import hashlib
import json
import re
import time

from edge.bundle import MODEL
from edge.errors import EdgeError
from edge.report import check_name
from edge.server.database import Postgres, lock, transaction
from edge.signing import canonical, check_release

KEY_ID = re.compile(r"[0-9a-f]{16}")  # edge.signing.key_id


class Refused(ValueError):
    """A push the host does not take, with the HTTP status and a message that says what to do."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def store_file(db, sha256: str, data: bytes) -> bool:
    """Keep an uploaded file under its sha256; False if it was held already."""
    if hashlib.sha256(data).hexdigest() != sha256:
        raise Refused(
            422,
            f"the body's sha256 is {hashlib.sha256(data).hexdigest()}, not {sha256}: it was cut "
            "or changed on the way; upload it again",
        )
    cursor = db.execute(
        "INSERT INTO model_files (sha256, bytes, received, data) VALUES (?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
        (sha256, len(data), time.time(), data),
    )
    return cursor.rowcount == 1


def push(db, name: str, signed, by: str) -> dict:
    """Number a signed release of `name`: {"name", "version", "new"}; a release pushed already keeps its number."""
    try:
        check_name(name, "model name")
        release = check_release(signed, "the release")
    except EdgeError as e:
        raise Refused(422, str(e)) from None
    if not isinstance(signed.get("signature"), str) or len(signed["signature"]) > 200:
        raise Refused(422, "the release has no signature: sign it with 'edge models push --key KEYDIR/edge-sign.key'")
    if not isinstance(signed.get("key_id"), str) or not KEY_ID.fullmatch(signed["key_id"]):
        raise Refused(422, "the release's key_id is not a key's name (16 hex digits): sign it with 'edge models push'")
    missing = _missing(db, release["files"])
    if missing:
        raise Refused(
            409,
            f"the host lacks {len(missing)} file(s) of the release ({', '.join(missing[:4])}): upload "
            "them first (PUT /api/v1/files/SHA256), as 'edge models push' does",
        )
    digest = hashlib.sha256(canonical(release)).hexdigest()
    text = json.dumps({"release": release, "key_id": signed["key_id"], "signature": signed["signature"]})
    with transaction(db):  # the next number is read and taken in one transaction
        lock(db, f"model:{name}")
        held = db.execute("SELECT version FROM models WHERE name = ? AND release_sha256 = ?", (name, digest)).fetchone()
        if held:
            return {"name": name, "version": held[0], "new": False}
        version = db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM models WHERE name = ?", (name,)).fetchone()[0]
        model = release["files"].get(MODEL, {}).get("sha256")  # what a device's reports name it by
        db.execute(
            "INSERT INTO models (name, version, release_sha256, signed, key_id, pushed_by, pushed, "
            "model_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (name, version, digest, text, signed["key_id"], by, time.time(), model),
        )
    return {"name": name, "version": version, "new": True}


def _missing(db, files: dict) -> list[str]:
    """The files of a release the host does not hold at the size the release names."""
    missing = []
    for file, facts in files.items():
        row = db.execute("SELECT bytes FROM model_files WHERE sha256 = ?", (facts["sha256"],)).fetchone()
        if row is None or row[0] != facts["bytes"]:
            missing.append(file)
    return missing


def withdraw(db, name: str, version: int) -> bool:
    """Mark a version withdrawn (no device is told to run it again); False if there is no such version."""
    cursor = db.execute(
        "UPDATE models SET withdrawn = COALESCE(withdrawn, ?) WHERE name = ? AND version = ?",
        (time.time(), name, version),
    )
    return cursor.rowcount == 1


def versions(db, name: str | None = None) -> list[dict]:
    """Every version (of `name`), newest first: what a list shows, without the signature."""
    rows = db.execute(
        "SELECT name, version, signed, key_id, pushed_by, pushed, withdrawn FROM models "
        "WHERE CAST(? AS TEXT) IS NULL OR name = ? ORDER BY name, version DESC",
        (name, name),
    ).fetchall()
    out = []
    for model, version, signed, key, by, pushed, withdrawn in rows:
        files = json.loads(signed)["release"]["files"]
        out.append(
            {
                "name": model,
                "version": version,
                "key_id": key,
                "pushed_by": by,
                "pushed": pushed,
                "withdrawn": withdrawn,
                "files": len(files),
                "bytes": sum(f["bytes"] for f in files.values()),
            }
        )
    return out


def signed_release(db, name: str, version: int) -> dict | None:
    """The signed release of NAME@VERSION as it was pushed, with the host's number and state beside it."""
    row = db.execute("SELECT signed, withdrawn FROM models WHERE name = ? AND version = ?", (name, version)).fetchone()
    if row is None:
        return None
    return {**json.loads(row[0]), "name": name, "version": version, "withdrawn": row[1]}


def file_blob(db, sha256: str) -> tuple[int, int] | None:
    """(rowid, bytes) of a held file, to read a range of it with `read_range`; None if it is not held."""
    return db.execute("SELECT rowid, bytes FROM model_files WHERE sha256 = ?", (sha256,)).fetchone()


def read_range(db, rowid: int, start: int, end: int) -> bytes:
    """Bytes [start, end) of a held file, read without loading the rest: SQLite's blob, or PostgreSQL's
    substring of a column it stores uncompressed (its rows are read in slices)."""
    if isinstance(db, Postgres):
        return bytes(
            db.execute(
                "SELECT substr(data, ?, ?) FROM model_files WHERE rowid = ?", (start + 1, end - start, rowid)
            ).fetchone()[0]
        )
    with db.blobopen("model_files", "data", rowid, readonly=True) as blob:
        blob.seek(start)
        return blob.read(end - start)
