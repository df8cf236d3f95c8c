"""What the fleet reported, for reading: every device, a device's reports, its latest field evaluation.
Reads of a row a device run on the event loop, on its connection (a millisecond for 100 devices); reads
that may walk many rows run in a pool of threads."""

import json
import time

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from edge.eval.metrics import report as metrics_report
from edge.server import alerts, store, vitals
from edge.server.auth import readable
from edge.server.bodies import fail


async def get_devices(request: Request):
    """Every device (or the caller's own): its latest report, counts, field accuracy, vitals, whether it is
    online, late or offline now, and the alerts it is in."""
    db, now = request.app.state.host.db(), time.time()
    found, raised = store.devices(db, readable(request)), alerts.active(db)
    for d in found:
        d["state"], d["alerts"] = vitals.state(d["vitals"], d["last_seen"], now), raised.get(d["device"], [])
    return _json_response('{"devices":[' + ",".join(_with_raw(d, "latest") for d in found) + "]}")


async def get_device_reports(request: Request):
    """?limit=N&since=UNIX: a device's newest N reports (or those ending after UNIX), oldest first."""
    device = request.path_params["device"]
    readable(request, device)
    try:
        limit = int(request.query_params.get("limit", 500))
        since = float(request.query_params["since"]) if "since" in request.query_params else None
    except ValueError:
        fail(400, "limit must be a whole number and since a Unix time")
    if not 1 <= limit <= 10_000:
        fail(400, "limit must be 1 to 10000")
    db = _known(request, device)
    reports = await run_in_threadpool(lambda: store.device_reports(db(), device, limit, since))
    return _json_response(_with_raw({"device": device, "reports": "[" + ",".join(reports) + "]"}, "reports"))


async def get_device_field(request: Request):
    """The metrics of a device's latest field evaluation."""
    device = request.path_params["device"]
    readable(request, device)
    field = store.field(_known(request, device)(), device)
    return JSONResponse({"device": device, "field": field and _field_metrics(field)})


def _known(request: Request, device: str):
    """The worker's connections, once `device` is known to have reported (else 404)."""
    db = request.app.state.host.db
    if not store.reported(db(), device):
        fail(404, f"no device '{device}' has reported")
    return db


def _with_raw(value: dict, key: str) -> str:
    """`value` as JSON, its `key` already JSON text: stored reports go out as they were stored (checked
    servable at the door), never parsed and written again, which cost a read 90 ms for 500 reports."""
    raw = value.pop(key)
    return json.dumps(value, ensure_ascii=False, allow_nan=False)[:-1] + f',"{key}":{raw}}}'


def _json_response(text: str) -> Response:
    return Response(text.encode("utf-8"), media_type="application/json")


def _field_metrics(field: dict) -> dict:
    """Every metric of a field evaluation, over the classes it saw (in truth or prediction): the others add
    nothing to any metric, and a 1000-class matrix would be mostly zeros."""
    seen = sorted({c for cell in field["cells"] for c in cell})
    at = {c: i for i, c in enumerate(seen)}
    cm = np.zeros((len(seen), len(seen)), dtype=np.int64)
    for (truth, predicted), count in field["cells"].items():
        cm[at[truth], at[predicted]] = count
    labels = [field["labels"][c] for c in seen]
    return {
        "run_id": field["run_id"],
        "reports": field["reports"],
        "classes": len(field["labels"]),
        **metrics_report(cm, labels),
    }
