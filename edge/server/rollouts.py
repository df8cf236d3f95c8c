"""Rollouts of model versions (edge.server.rollouts_store): started and aborted by a publisher, read by a
publisher or a reader, moved on by one worker's clock.

    POST /api/v1/rollouts                    {"model", "version", "devices": [...] | null (all), "canary": N,
                                              "waves": N, "watch": SECONDS, "guard": {"top1_drop": ...}}
                                              (publisher)
    GET  /api/v1/rollouts                    ?model=NAME: every rollout, newest first, with its devices and history
    POST /api/v1/rollouts/{model}/abort      (publisher)
"""

import asyncio

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from edge.errors import EdgeError
from edge.server import bodies, rollouts_store, store
from edge.server.auth import refuse, requires
from edge.server.bodies import fail
from edge.server.guard import Guard
from edge.server.models import PUBLISHERS, write

TICK = 1.0  # seconds between looks at the active rollouts
KEYS = {"model", "version", "devices", "canary", "waves", "watch", "guard"}  # what a start may hold


@requires("publish", PUBLISHERS)
async def post_rollout(request: Request):
    host = request.app.state.host
    asked = bodies.parse(
        await bodies.read(request, host.options.max_body, "rollout"), 'send JSON: {"model": NAME, "version": N}'
    )
    if not isinstance(asked, dict) or not {"model", "version"} <= set(asked) or set(asked) - KEYS:
        fail(422, 'send {"model": NAME, "version": N} and any of "devices", "canary", "waves", "watch", "guard"')
    model, version, devices = asked["model"], asked["version"], asked.get("devices")
    if not isinstance(model, str) or not isinstance(version, int) or isinstance(version, bool):
        fail(422, '"model" is a name and "version" a whole number')
    if devices is not None and not (isinstance(devices, list) and devices and all(isinstance(d, str) for d in devices)):
        fail(422, '"devices" is a list of device names, or null for every device that has reported')
    canary, waves, watch = asked.get("canary"), asked.get("waves"), asked.get("watch")
    for key, value in (("canary", canary), ("waves", waves)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            fail(422, f'"{key}" is a whole number')
    if watch is not None and (not isinstance(watch, (int, float)) or isinstance(watch, bool)):
        fail(422, '"watch" is a number of seconds')
    try:
        guard = Guard(**(asked.get("guard") or {}))
    except (TypeError, EdgeError) as e:
        fail(422, f"guard: {e}")
    started = await write(
        host, rollouts_store.start, model, version, devices, canary, waves, watch, guard, request.user.name
    )
    return JSONResponse(started, status_code=201)


async def get_rollouts(request: Request):
    if not {"read", "publish"} & set(request.auth.scopes):
        refuse(request, "'{name}' has a {role} token: rollouts are read with a reader or publisher token")
    model = request.query_params.get("model")
    found = await run_in_threadpool(lambda: rollouts_store.rollouts(request.app.state.host.db(), model))
    return JSONResponse({"rollouts": found})


@requires("publish", PUBLISHERS)
async def post_abort(request: Request):
    ended = await write(request.app.state.host, rollouts_store.abort, request.path_params["model"], request.user.name)
    return JSONResponse(ended)


async def clock(db_path, log) -> None:
    """Move the rollouts on every TICK until cancelled: one worker runs this (the one that checkpoints), on a
    connection of its own that may wait for SQLite's write lock, off the event loop."""
    db = await run_in_threadpool(store.open_db, db_path)
    try:
        while True:
            await asyncio.sleep(TICK)
            try:
                await run_in_threadpool(rollouts_store.advance, db)
            except Exception as e:  # noqa: BLE001 (a busy or full database: the next tick tries again)
                log(f"rollouts could not move on ({e}); trying again in {TICK:g} s")
    finally:
        db.close()
