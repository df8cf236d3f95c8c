"""Model versions: a publisher uploads a bundle's files and its signed release (edge.server.releases), devices and
readers fetch them.

    PUT  /api/v1/files/{sha256}                  a file's bytes (publisher); checked against the sha256
    GET  /api/v1/files/{sha256}                  a file, or a Range of it (bytes=START-[END]): a cut download resumes
    POST /api/v1/models/{name}                   {"release", "key_id", "signature"} (publisher): NAME@VERSION
    GET  /api/v1/models                          every version, newest first (?name=NAME)
    GET  /api/v1/models/{name}/{version}         the signed release, as pushed
    POST /api/v1/models/{name}/{version}/withdraw   (publisher)

Uploads and pushes are rare and large: each runs on a thread with a connection of its own, which may wait for
SQLite's write lock, not on the event loop's writer, which never waits.
"""

import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse

from edge.report import SHA256
from edge.server import bodies, database, releases, store
from edge.server.auth import requires
from edge.server.bodies import fail
from edge.server.ingest import RETRY_AFTER

CHUNK = 1 << 20  # bytes a download is read and sent in
PUBLISHERS = "'{name}' has a {role} token; pushing models needs a publisher token (edge token create NAME --publisher)"
READERS = "'{name}' has a {role} token, which reads no models"


@requires("publish", PUBLISHERS)
async def put_file(request: Request):
    host = request.app.state.host
    sha256 = _sha256(request)
    data = await bodies.read(
        request, host.options.max_model_file, "bytes (a model file over the limit: raise edge serve --max-model-file)"
    )
    new = await write(host, releases.store_file, sha256, data)
    return JSONResponse({"sha256": sha256, "bytes": len(data), "stored": new})


@requires("models", READERS)
async def get_file(request: Request):
    host = request.app.state.host
    sha256 = _sha256(request)
    found = await run_in_threadpool(lambda: releases.file_blob(host.db(), sha256))
    if found is None:
        fail(404, f"no file {sha256[:12]}: push its release again")
    rowid, size = found
    start, end = _range(request.headers.get("range"), size)
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start), "ETag": f'"{sha256}"'}
    if (start, end) != (0, size):
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return StreamingResponse(
        _chunks(host.options.db, rowid, start, end),
        206 if "Content-Range" in headers else 200,
        headers,
        media_type="application/octet-stream",
    )


def _range(header: str | None, size: int) -> tuple[int, int]:
    """[start, end) of one `bytes=START-[END]` range (the one form a resuming device sends); 416 past the end."""
    if header is None:
        return 0, size
    match = re.fullmatch(r"bytes=(\d{1,15})-(\d{0,15})", header.strip())
    if not match:
        fail(416, "send Range: bytes=START- or bytes=START-END (one range)", {"Content-Range": f"bytes */{size}"})
    start = int(match.group(1))
    end = min(int(match.group(2)) + 1, size) if match.group(2) else size
    if start >= size or end <= start:
        fail(416, f"the file has {size} bytes", {"Content-Range": f"bytes */{size}"})
    return start, end


def _chunks(db_path, rowid: int, start: int, end: int):
    """The range, CHUNK at a time, on a connection of its own (Starlette runs this on a thread)."""
    db = store.open_reader(db_path)
    try:
        for at in range(start, end, CHUNK):
            yield releases.read_range(db, rowid, at, min(at + CHUNK, end))
    finally:
        db.close()


@requires("publish", PUBLISHERS)
async def post_model(request: Request):
    host = request.app.state.host
    signed = bodies.parse(
        await bodies.read(request, host.options.max_body, "release"),
        'send the signed release as JSON: {"release": ..., "key_id": ..., "signature": ...}',
    )
    if not isinstance(signed, dict):
        fail(422, 'send {"release": ..., "key_id": ..., "signature": ...}')
    pushed = await write(host, releases.push, request.path_params["name"], signed, request.user.name)
    return JSONResponse(pushed, status_code=201 if pushed["new"] else 200)


@requires("models", READERS)
async def get_models(request: Request):
    name = request.query_params.get("name")
    found = await run_in_threadpool(lambda: releases.versions(request.app.state.host.db(), name))
    return JSONResponse({"models": found})


@requires("models", READERS)
async def get_model(request: Request):
    name, version = request.path_params["name"], _version(request)
    found = await run_in_threadpool(lambda: releases.signed_release(request.app.state.host.db(), name, version))
    if found is None:
        fail(404, f"no model {name[:64]}@{version}: list them with GET /api/v1/models")
    return JSONResponse(found)


@requires("publish", PUBLISHERS)
async def post_withdraw(request: Request):
    name, version = request.path_params["name"], _version(request)
    if not await write(request.app.state.host, releases.withdraw, name, version):
        fail(404, f"no model {name[:64]}@{version}: list them with GET /api/v1/models")
    return JSONResponse({"name": name, "version": version, "withdrawn": True})


def _sha256(request: Request) -> str:
    sha256 = request.path_params["sha256"]
    if not SHA256.fullmatch(sha256):
        fail(404, "a file is named by its sha256: 64 lowercase hex digits")
    return sha256


def _version(request: Request) -> int:
    text = request.path_params["version"]
    if not (text.isdigit() and 0 < len(text) <= 9):
        fail(404, "a version is a whole number: NAME@1, NAME@2, ...")
    return int(text)


async def write(host, action, *args):
    """`action(db, *args)` on a thread, with a connection of its own; a refusal or a full disk is the client's
    answer, never a 500."""

    def run():
        db = store.open_db(host.options.db)
        try:
            return action(db, *args)
        finally:
            db.close()

    try:
        return await run_in_threadpool(run)
    except releases.Refused as e:
        fail(e.status, str(e))
    except database.OperationalError as e:
        fail(
            503,
            "the host's disk is full: free space and push again"
            if database.full(e)
            else f"the host's database cannot answer now ({database.describe(e, host.options.db)}): push again",
            {"Retry-After": RETRY_AFTER},
        )
