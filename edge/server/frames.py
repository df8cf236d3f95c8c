"""Collected frames: POST /api/v1/frames from a device ({"frames": [...]}, edge.frame_record's schema), the
frames of a device and one frame's JPEG for reading, and POST /api/v1/frames/{id}/label from the dashboard."""

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from edge.frame_record import check_label, check_record
from edge.server import bodies, frame_check, ingest, store
from edge.server.auth import readable, requires
from edge.server.bodies import fail
from edge.server.options import MIN_BODY

MAX_FRAMES = 16  # frames in one POST


@requires("device", "'{name}' has a {role} token; frames need a device token")
async def post_frames(request: Request):
    host = request.app.state.host
    device, frames = await ingest.posted(request, "frames", MAX_FRAMES, host.options.max_frame_body, check_record)
    refused = await run_in_threadpool(frame_check.refusal, frames)
    if refused:
        fail(*refused)
    return ingest.answer(request, "frames", device, await ingest.stored(request, "frames", device, frames))


async def get_device_frames(request: Request):
    """?state=new|labelled|discarded|all&limit=N: a device's first N collected frames in that state, in the order
    they came (a labelling queue), and its counts."""
    device = request.path_params["device"]
    readable(request, device)
    state = request.query_params.get("state", "new")
    if state not in store.FRAME_STATES:
        fail(400, f"state must be one of {', '.join(store.FRAME_STATES)}")
    try:
        limit = int(request.query_params.get("limit", 100))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        fail(400, "limit must be a whole number from 1 to 1000")
    db = request.app.state.host.db
    frames, counts = await run_in_threadpool(
        lambda: (store.device_frames(db(), device, state, limit), store.frame_counts(db(), device))
    )
    return JSONResponse({"device": device, "counts": counts, "frames": frames})


async def get_frame_jpeg(request: Request):
    only = readable(request)  # who asks first: whether an id exists is not told to anyone
    frame_id = request.path_params["frame"]
    db = request.app.state.host.db
    found = await run_in_threadpool(lambda: store.frame_jpeg(db(), frame_id))
    if found is None:
        fail(404, "no such frame")
    if only is not None:
        readable(request, found[0])  # 403 for another device's
    return Response(
        found[1],
        media_type="image/jpeg",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=86400"},
    )


@requires("label", "'{name}' has a device token: labelling needs a reader token (edge token create NAME --reader)")
async def post_label(request: Request):
    """{"label": "cat"}, {"discard": true}, or {"label": null} to make a frame new again."""
    frame_id = request.path_params["frame"]
    given = bodies.parse(
        await bodies.read(request, MIN_BODY, "labels"), 'send JSON: {"label": "cat"} or {"discard": true}'
    )
    if not isinstance(given, dict) or set(given) - {"label", "discard"}:
        fail(422, 'send {"label": "cat"}, {"discard": true}, or {"label": null} to make it new again')
    label, discard = given.get("label"), given.get("discard", False)
    if discard not in (True, False) or (label is not None and discard):
        fail(422, '"discard" is true or false, and a discarded frame has no label')
    classes = store.frame_classes(request.app.state.host.db(), frame_id) if label is not None else []
    problem = label is not None and check_label(label, classes)  # the model's own class, whatever it holds
    if problem:
        fail(422, problem)
    outcome = await ingest.stored(request, "labels", None, [{"id": frame_id, "label": label, "discard": discard}])
    if outcome.conflicts:
        fail(404, f"no frame '{frame_id[:64]}'")
    return JSONResponse({"id": frame_id, "labelled_as": label, "discarded": discard})
