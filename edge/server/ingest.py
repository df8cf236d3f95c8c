"""The way a device's POST comes in, for reports and frames alike: checked item by item, stored through the
worker's writer (edge.server.writer), and answered with the ids the host now holds: a device lets an item go
only on that word."""

from starlette.requests import Request
from starlette.responses import JSONResponse

from edge.server import bodies, database, store
from edge.server.bodies import fail
from edge.server.database import redacted

RETRY_AFTER = "60"  # seconds, with a 503


async def posted(request: Request, key: str, most: int, limit: int, check) -> tuple[str, list]:
    """The device and its checked items of a POST {key: [item, ...]}, or the error that refuses it."""
    device = request.user.name
    batch = bodies.parse(await bodies.read(request, limit, key), f'send JSON: {{"{key}": [item, ...]}}')
    if not isinstance(batch, dict) or not isinstance(batch.get(key), list):
        fail(422, f'send {{"{key}": [item, ...]}}')
    items = batch[key]
    if not 1 <= len(items) <= most:
        fail(422, f"send 1 to {most} {key} a batch, not {len(items)}")
    for n, item in enumerate(items):
        problem = check(item)
        if problem:
            fail(422, f"{key[:-1]} {n}: {problem}")
        if item["device_id"] != device:
            fail(403, f"{key[:-1]} {n} is for device '{item['device_id']}' but the token is for '{device}'")
    return device, items


async def stored(request: Request, kind: str, device: str | None, items: list) -> store.Stored:
    """Store through the writer, or 503 with why."""
    host = request.app.state.host
    refused = (503, f"the host's disk is full: keep the {kind} and retry later", {"Retry-After": RETRY_AFTER})
    if host.disk_full():  # as /healthz says, until space is freed
        fail(*refused)
    try:
        outcome = await host.writer.store(kind, device, items)
    except database.OperationalError as e:
        if not database.full(e):
            reason = database.describe(e, host.options.db)
            fail(
                503, f"the host's database cannot take {kind} now ({reason}): retry later", {"Retry-After": RETRY_AFTER}
            )
        host.wrote(disk_full=True)
        host.log(
            f"the disk of {redacted(str(host.options.db))} is full: reports and frames are refused (503) until "
            "space is freed"
        )
        fail(*refused)
    host.wrote(disk_full=False)
    return outcome


def answer(request: Request, kind: str, device: str, outcome: store.Stored, **more) -> JSONResponse:
    """The POST's answer: what was stored now, what was held already, the ids the host now holds, and `more`."""
    for item_id in outcome.conflicts:
        request.app.state.host.log(f"'{device}' sent {kind[:-1]} {item_id} again with other content: the first is kept")
    return JSONResponse(
        {
            "stored": len(outcome.stored),
            "duplicates": len(outcome.duplicates),
            "conflicts": outcome.conflicts,
            "ids": outcome.stored + outcome.duplicates + outcome.conflicts,
            **more,
        }
    )
