"""Request bodies on `edge serve`: read within a limit, parsed as JSON, and the error that refuses one."""

from typing import NoReturn

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request

DRAIN = 8  # bodies up to this many times the limit are read to the end before the 413


def fail(status: int, message: str, headers=None) -> NoReturn:
    """Refuse the request: the client gets {"error": message} with `status`."""
    raise HTTPException(status, message, headers)


async def read(request: Request, limit: int, what: str) -> bytes:
    """The body, or 413 past `limit`. A body somewhat over is read to its end and dropped, so the client is
    still listening when the 413 comes (a client cut off mid-send sees only a reset); one far over is cut off."""
    too_big = f"body over {limit} bytes: send fewer {what} a batch"
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > DRAIN * limit):
        fail(413 if length.isdigit() else 400, too_big if length.isdigit() else "bad Content-Length")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > DRAIN * limit:
                break
            if size <= limit:
                chunks.append(chunk)
    except ClientDisconnect:  # gone, or cut off by --body-timeout: the answer goes nowhere, and is no error
        fail(400, "the client left before its body ended")
    if size > limit:
        fail(413, too_big)
    return b"".join(chunks)


def parse(data: bytes, hint: str):
    """The JSON value of a body: 400 if it is not JSON (`hint` says what to send). orjson refuses NaN,
    Infinity, numbers past a double and lone surrogates; its newer versions (3.13 here) nesting past 1024 too,
    which is no report nor frame either way (older ones parse it, and the schema refuses it): 422 whatever
    the version."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        if str(e).startswith("depth limit exceeded"):
            fail(422, "nested deeper than 1024 levels: no report or frame is")
        fail(400, f"{hint}: the body is not JSON ({str(e)[:120]})")
