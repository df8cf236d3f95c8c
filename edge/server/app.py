"""The HTTP API and dashboard of `edge serve` (Starlette, served by uvicorn).

    POST /api/v1/reports                 a batch {"reports": [...]}, Authorization: Bearer DEVICE_TOKEN
    POST /api/v1/frames                  collected frames {"frames": [...]} (edge.frame_record), the same way
    GET  /api/v1/devices                 every device: its latest report, counts, field accuracy
    GET  /api/v1/devices/{id}/reports    ?limit=N&since=UNIX
    GET  /api/v1/devices/{id}/field      the metrics of its latest field evaluation
    GET  /api/v1/devices/{id}/frames     ?state=new|labelled|discarded|all&limit=N: its collected frames
    GET  /api/v1/frames/{id}.jpg         a collected frame
    POST /api/v1/frames/{id}/label       {"label": "cat"} or {"discard": true} (or both empty: new again)
    GET  /api/v1/export.csv              one row a report
    PUT/GET /api/v1/files/{sha256}, POST/GET /api/v1/models/...   model versions (edge.server.models)
    POST/GET /api/v1/rollouts, POST /api/v1/rollouts/{model}/abort   rollouts (edge.server.rollouts)
    GET  /metrics                        the fleet's health and the host's own, in Prometheus' format
    GET  /healthz                        no token
    GET  /                               the dashboard (its data comes from the API)

Bad input never gets a 500: 400 bad JSON, 401 no or unknown token, 403 a token writing for another device
(or reading another's, where reads are protected), 404, 413 body over the limit, 422 a report that breaks the
schema or could not be served back, 503 a full disk or a database that cannot answer now (unreachable,
busy), with a JSON {"error": "..."} that says what.
A POST's answer names the ids the host now holds (`ids`): a device lets a report go only on that word.
Labelling is a read token's right where reads are protected (a device token cannot label), else open like
the reads.

The server is several processes (--workers), each a whole server on the port: one event loop answering
reads while it parses, checks and stores POSTs takes one core, and at some 400 POSTs a second the reads
queued behind them. They share nothing but the database and two marks in shared memory (`Shared`); the processes are
edge.server.workers'.

Each resource's endpoints are a module of their own (reports, frames, devices, export, pages); who may call
them is edge.server.auth's; what a worker holds while it serves is `app.state.host` (edge.server.state).
"""

import asyncio
import contextlib

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from edge.server import (
    alerts,
    database,
    devices,
    export,
    frames,
    metrics,
    models,
    pages,
    reports,
    retention,
    rollouts,
)
from edge.server.auth import DatabaseUnavailable, TokenBackend
from edge.server.ingest import RETRY_AFTER
from edge.server.options import ServeOptions
from edge.server.state import Host, Shared
from edge.server.timing import Timed
from edge.server.urls import RefuseNul

ROUTES = [
    Route("/", pages.dashboard),
    Route("/healthz", pages.healthz),
    Route("/api/v1/reports", reports.post_reports, methods=["POST"]),
    Route("/api/v1/devices", devices.get_devices),
    Route("/api/v1/devices/{device}/reports", devices.get_device_reports),
    Route("/api/v1/devices/{device}/field", devices.get_device_field),
    Route("/api/v1/devices/{device}/frames", frames.get_device_frames),
    Route("/api/v1/frames", frames.post_frames, methods=["POST"]),
    Route("/api/v1/frames/{frame}.jpg", frames.get_frame_jpeg),
    Route("/api/v1/frames/{frame}/label", frames.post_label, methods=["POST"]),
    Route("/api/v1/export.csv", export.export_csv),
    Route("/api/v1/files/{sha256}", models.put_file, methods=["PUT"]),
    Route("/api/v1/files/{sha256}", models.get_file),
    Route("/api/v1/models", models.get_models),
    Route("/api/v1/models/{name}", models.post_model, methods=["POST"]),
    Route("/api/v1/models/{name}/{version}", models.get_model),
    Route("/api/v1/models/{name}/{version}/withdraw", models.post_withdraw, methods=["POST"]),
    Route("/api/v1/rollouts", rollouts.post_rollout, methods=["POST"]),
    Route("/api/v1/rollouts", rollouts.get_rollouts),
    Route("/api/v1/rollouts/{model}/abort", rollouts.post_abort, methods=["POST"]),
    Route("/metrics", metrics.get_metrics),
]
# What /metrics times each route's requests under (edge.server.timing), and any other request (a 404) last
TIMED = [f"{sorted((route.methods or set()) - {'HEAD'})[0]} {route.path}" for route in ROUTES] + ["other"]


def create_app(options: ServeOptions, log=print, shared: Shared | None = None, checkpoints=True) -> Starlette:
    """The app of one worker: `shared` with the others; `checkpoints`: whether this worker's writer makes
    the checkpoints (one of them does)."""
    host = Host(options.resolved(), log, shared or Shared(), checkpoints)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        tasks = []
        if checkpoints:  # the one worker's clocks
            db, days = host.options.db, host.options.keep_days
            tasks = [
                asyncio.create_task(host.writer.checkpoints()),
                asyncio.create_task(rollouts.clock(db, log)),
                asyncio.create_task(alerts.watch(db, host.options.alert_webhook, log)),
            ]
            if days:
                tasks.append(asyncio.create_task(retention.keep(db, days, log)))
        yield
        for task in tasks:
            task.cancel()

    app = Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, **dict.fromkeys(database.OperationalError, _unavailable)},
        middleware=[
            Middleware(Timed, host.shared.timings, {route.endpoint: n for n, route in enumerate(ROUTES)}, len(ROUTES)),
            Middleware(RefuseNul),
            Middleware(AuthenticationMiddleware, backend=TokenBackend(host), on_error=_unavailable),
        ],
    )
    app.state.host, app.state.timed = host, TIMED
    return app


def _unavailable(request: HTTPConnection, exc: Exception) -> JSONResponse:
    """503 for a database that is unreachable, busy or full: the request's own error is not the caller's."""
    reason = (
        exc.args[0]
        if isinstance(exc, DatabaseUnavailable)
        else database.describe(exc, request.app.state.host.options.db)
    )
    return JSONResponse(
        {"error": f"the host's database cannot answer now ({reason}): retry later"},
        status_code=503,
        headers={"Retry-After": RETRY_AFTER},
    )


async def _http_error(request: Request, exc: Exception):
    assert isinstance(exc, HTTPException)  # its handler's key; typed as Starlette's own handlers are
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)
