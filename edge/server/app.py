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
    GET  /healthz                        no token
    GET  /                               the dashboard (its data comes from the API)

Bad input never gets a 500: 400 bad JSON, 401 no or unknown token, 403 a token writing for another device
(or reading another's, where reads are protected), 404, 413 body over the limit, 422 a report that breaks the
schema or could not be served back, 503 a full disk, with a JSON {"error": "..."} that says what.
A POST's answer names the ids the host now holds (`ids`): a device lets a report go only on that word.
Labelling is a read token's right where reads are protected (a device token cannot label), else open like
the reads.

The server is several processes (--workers), each a whole server on the port: one event loop answering
reads while it parses, checks and stores POSTs takes one core, and at some 400 POSTs a second the reads
queued behind them. They share nothing but the database and two marks in shared memory (`Shared`).
"""
import asyncio
import contextlib
import csv
import io
import json
import multiprocessing
import os
import shutil
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from edge.errors import EdgeError
from edge.eval.metrics import report as metrics_report
from edge.frame_record import check_label, check_record
from edge.report import check_report
from edge.server import frame_check, store
from edge.server.writer import Writer

MAX_BATCH = 500  # reports in one POST
MAX_FRAMES = 16  # frames in one POST
MIN_BODY = 16_384  # bytes: one report of a many-class model must fit
DRAIN = 8  # bodies up to this many times max_body are read to the end before the 413
MIN_FREE = 1 << 20  # bytes to be freed on a full disk before reports are taken again
RETRY_AFTER = "60"  # seconds, with a 503
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_WORKERS = 4  # by default: one a CPU up to this many
DASHBOARD = Path(__file__).with_name("dashboard.html")
CSV_COLUMNS = ("device", "received", "id", "run_id", "seq", "window_start", "window_end", "frames", "evaluated",
               "dropped", "fps", "inference_p50_ms", "inference_p99_ms", "frame_p50_ms", "accuracy", "macro_f1",
               "drift_level", "drift_psi_max", "drift_frames", "model_sha256")
FORMULA = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may take a cell starting with as a formula


@dataclass
class ServeOptions:
    db: Path
    max_body: int = 1_000_000  # bytes
    max_frame_body: int = 8_000_000  # bytes a POST of frames
    # Reads need a reader token (or a device token, for that device's own): None protects them unless
    # the server listens on loopback only.
    protect_reads: bool | None = None
    host: str = "127.0.0.1"
    port: int = 8765
    workers: int | None = None  # processes serving; None: one a CPU, up to MAX_WORKERS

    def check(self) -> None:
        if not 1 <= self.port <= 65535:
            raise EdgeError(f"--port {self.port}: give a port from 1 to 65535, e.g. 8765")
        if self.workers is None:
            self.workers = min(os.cpu_count() or 1, MAX_WORKERS)
        if not 1 <= self.workers <= 64:
            raise EdgeError(f"--workers {self.workers}: give 1 to 64 processes (one a CPU core is enough)")
        if self.max_body < MIN_BODY:
            raise EdgeError(f"--max-body {self.max_body}: give at least {MIN_BODY} bytes (one report of a "
                            "1000-class model is about 60 KB; the default is 1000000)")
        if self.max_frame_body < MIN_BODY:
            raise EdgeError(f"--max-frame-body {self.max_frame_body}: give at least {MIN_BODY} bytes (a collected "
                            "640x480 frame is about 100 KB; the default is 8000000)")
        if self.protect_reads is None:
            self.protect_reads = self.host not in LOOPBACK


@dataclass
class Shared:
    """What the workers share besides the database: memory every one of them maps, made before they fork."""
    # the free bytes when a write last failed for a full disk; -1 once writes succeed
    full: object = field(default_factory=lambda: multiprocessing.RawValue("d", -1.0))
    # 1 while a checkpoint finishes: every worker's writes wait (edge.server.writer)
    hold: object = field(default_factory=lambda: multiprocessing.RawValue("b", 0))


def create_app(options: ServeOptions, log=print, shared: Shared | None = None, checkpoints=True) -> Starlette:
    """The app of one worker: `shared` with the others; `checkpoints`: whether this worker's writer makes
    the checkpoints (one of them does)."""
    options.check()
    local = threading.local()
    shared = shared or Shared()
    full = shared.full

    def db() -> sqlite3.Connection:
        """This thread's read-only connection: the event loop's, or a reading thread's (sqlite3 connections
        are not for sharing between threads)."""
        if not hasattr(local, "db"):
            local.db = store.open_reader(options.db)
        return local.db

    # the writer's connection: this opens (or creates) the store and checks its version
    writer = Writer(store.open_db(options.db), shared.hold, store.open_reader(options.db) if checkpoints else None)

    def fail(status: int, message: str, headers=None):
        raise HTTPException(status, message, headers)

    def caller(request: Request) -> tuple[str, str]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            fail(401, "missing token: send 'Authorization: Bearer TOKEN' (edge token create NAME makes one)")
        found = store.who(db(), token.strip())
        if found is None:
            fail(401, "unknown or revoked token")
        return found

    def readable(request: Request, device: str | None = None) -> str | None:
        """The one device this caller may read (None: any), or 403 for `device` if not that one."""
        if not options.protect_reads:
            return None
        name, role = caller(request)
        if role == "reader":
            return None
        if device is not None and device != name:
            fail(403, f"'{name}' has a device token: it reads its own reports only (a reader token reads all)")
        return name

    def free_bytes() -> int:
        return shutil.disk_usage(Path(options.db).resolve().parent).free

    def disk_full() -> bool:
        """Since a write failed for lack of space, until that much more is free again."""
        return full.value >= 0 and free_bytes() < full.value + MIN_FREE

    async def body(request: Request, limit: int, what: str) -> bytes:
        """The body, or 413 past `limit`. A body somewhat over is read to its end and dropped, so the
        client is still listening when the 413 comes (a client cut off mid-send sees only a reset);
        one far over is cut off."""
        too_big = f"body over {limit} bytes: send fewer {what} a batch"
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > DRAIN * limit):
            fail(413 if length.isdigit() else 400, too_big if length.isdigit() else "bad Content-Length")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > DRAIN * limit:
                break
            if size <= limit:
                chunks.append(chunk)
        if size > limit:
            fail(413, too_big)
        return b"".join(chunks)

    async def posted(request: Request, key: str, most: int, limit: int, check) -> tuple[str, list]:
        """The device and its checked items of a POST {key: [item, ...]}, or the error that refuses it."""
        device, role = caller(request)
        if role != "device":
            fail(403, f"'{device}' has a {role} token; {key} need a device token")
        data = await body(request, limit, key)
        try:
            batch = orjson.loads(data)  # refuses NaN, Infinity, numbers past a double and lone surrogates
        except orjson.JSONDecodeError as e:
            fail(400, f"body is not JSON ({str(e)[:120]})")
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
                fail(403, f"{key[:-1]} {n} is for device '{item['device_id']}' but the token is '{device}''s")
        return device, items

    async def stored(kind: str, device: str | None, items: list):
        """Store through the writer, or 503 with why; the answer names the ids now held."""
        refused = (503, f"the host's disk is full: keep the {kind} and retry later", {"Retry-After": RETRY_AFTER})
        if disk_full():  # as /healthz says, until space is freed
            fail(*refused)
        try:
            outcome = await writer.store(kind, device, items)
        except sqlite3.OperationalError as e:
            if e.sqlite_errorcode & 0xFF != sqlite3.SQLITE_FULL:
                fail(503, f"the host's database cannot take {kind} now ({e}): retry later",
                     {"Retry-After": RETRY_AFTER})
            full.value = free_bytes()
            log(f"the disk of {options.db} is full: reports and frames are refused (503) until space is freed")
            fail(*refused)
        full.value = -1.0
        return outcome

    def answer(kind: str, device: str, outcome: store.Stored) -> JSONResponse:
        for item_id in outcome.conflicts:
            log(f"'{device}' sent {kind[:-1]} {item_id} again with other content: the first is kept")
        return JSONResponse({"stored": len(outcome.stored), "duplicates": len(outcome.duplicates),
                             "conflicts": outcome.conflicts,
                             "ids": outcome.stored + outcome.duplicates + outcome.conflicts})

    async def post_reports(request: Request):
        device, reports = await posted(request, "reports", MAX_BATCH, options.max_body, check_report)
        return answer("reports", device, await stored("reports", device, reports))

    async def post_frames(request: Request):
        device, frames = await posted(request, "frames", MAX_FRAMES, options.max_frame_body, check_record)
        refused = await run_in_threadpool(frame_check.refusal, frames)
        if refused:
            fail(*refused)
        return answer("frames", device, await stored("frames", device, frames))

    def labeller(request: Request) -> None:
        """Who may label: anyone who may read all, where reads are protected a reader token."""
        if options.protect_reads:
            name, role = caller(request)
            if role != "reader":
                fail(403, f"'{name}' has a device token: labelling needs a reader token (edge token create NAME "
                          "--reader)")

    async def post_label(request: Request):
        labeller(request)
        frame_id = request.path_params["frame"]
        try:
            given = orjson.loads(await body(request, MIN_BODY, "labels"))
        except orjson.JSONDecodeError:
            fail(400, 'send JSON: {"label": "cat"} or {"discard": true}')
        if not isinstance(given, dict) or set(given) - {"label", "discard"}:
            fail(422, 'send {"label": "cat"}, {"discard": true}, or {"label": null} to make it new again')
        label, discard = given.get("label"), given.get("discard", False)
        if discard not in (True, False) or (label is not None and discard):
            fail(422, '"discard" is true or false, and a discarded frame has no label')
        if label is not None and check_label(label):
            fail(422, check_label(label))
        outcome = await stored("labels", None, [{"id": frame_id, "label": label, "discard": discard}])
        if outcome.conflicts:
            fail(404, f"no frame '{frame_id[:64]}'")
        return JSONResponse({"id": frame_id, "labelled_as": label, "discarded": discard})

    # Reads of a row a device run on the event loop, on its connection (a millisecond for 100 devices);
    # reads that may walk many rows run in a pool of threads.
    async def get_devices(request: Request):
        found = store.devices(db(), readable(request))
        return _json_response('{"devices":[' + ",".join(_with_raw(d, "latest") for d in found) + "]}")

    def known(device: str) -> None:
        if not store.reported(db(), device):
            fail(404, f"no device '{device}' has reported")

    async def get_device_reports(request: Request):
        device = request.path_params["device"]
        readable(request, device)
        try:
            limit = int(request.query_params.get("limit", 500))
            since = float(request.query_params["since"]) if "since" in request.query_params else None
        except ValueError:
            fail(400, "limit must be a whole number and since a Unix time")
        if not 1 <= limit <= 10_000:
            fail(400, "limit must be 1 to 10000")
        known(device)
        reports = await run_in_threadpool(lambda: store.device_reports(db(), device, limit, since))
        return _json_response(_with_raw({"device": device, "reports": "[" + ",".join(reports) + "]"}, "reports"))

    async def get_device_field(request: Request):
        device = request.path_params["device"]
        readable(request, device)
        known(device)
        field = store.field(db(), device)
        return JSONResponse({"device": device, "field": field and _field_metrics(field)})

    async def get_device_frames(request: Request):
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
        frames, counts = await run_in_threadpool(
            lambda: (store.device_frames(db(), device, state, limit), store.frame_counts(db(), device)))
        return JSONResponse({"device": device, "counts": counts, "frames": frames})

    async def get_frame_jpeg(request: Request):
        only = readable(request)  # who asks first: whether an id exists is not told to anyone
        frame_id = request.path_params["frame"]
        found = await run_in_threadpool(lambda: store.frame_jpeg(db(), frame_id))
        if found is None:
            fail(404, "no such frame")
        if only is not None:
            readable(request, found[0])  # 403 for another device's
        return Response(found[1], media_type="image/jpeg", headers={"X-Content-Type-Options": "nosniff",
                                                                     "Cache-Control": "private, max-age=86400"})

    async def export_csv(request: Request):
        only = readable(request)
        reader = store.open_reader(options.db)  # its own connection: streamed from a worker thread

        def rows():
            try:
                out = io.StringIO()
                writer = csv.writer(out)
                writer.writerow(CSV_COLUMNS)
                for device, received, r in store.all_reports(reader, only):
                    writer.writerow(_csv_row(device, received, r))
                    if out.tell() > 65536:
                        yield out.getvalue()
                        out.seek(0)
                        out.truncate()
                yield out.getvalue()
            finally:
                reader.close()

        return StreamingResponse(rows(), media_type="text/csv",
                                 headers={"content-disposition": 'attachment; filename="edge-reports.csv"'})

    async def healthz(request: Request):
        try:
            db().execute("SELECT 1").fetchone()
        except sqlite3.Error as e:
            return JSONResponse({"status": "error", "error": str(e)}, status_code=503)
        if disk_full():
            return JSONResponse({"status": "disk full", "error": f"the disk of {options.db.name} is full: devices "
                                 "keep their reports until space is freed"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def dashboard(request: Request):
        return HTMLResponse(DASHBOARD.read_text(encoding="utf-8"))

    async def http_error(request: Request, exc: HTTPException):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        checkpointing = asyncio.create_task(writer.checkpoints()) if checkpoints else None
        yield
        if checkpointing:
            checkpointing.cancel()

    app = Starlette(lifespan=lifespan, routes=[
        Route("/", dashboard),
        Route("/healthz", healthz),
        Route("/api/v1/reports", post_reports, methods=["POST"]),
        Route("/api/v1/devices", get_devices),
        Route("/api/v1/devices/{device}/reports", get_device_reports),
        Route("/api/v1/devices/{device}/field", get_device_field),
        Route("/api/v1/devices/{device}/frames", get_device_frames),
        Route("/api/v1/frames", post_frames, methods=["POST"]),
        Route("/api/v1/frames/{frame}.jpg", get_frame_jpeg),
        Route("/api/v1/frames/{frame}/label", post_label, methods=["POST"]),
        Route("/api/v1/export.csv", export_csv),
    ], exception_handlers={HTTPException: http_error})
    return app


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
    return {"run_id": field["run_id"], "reports": field["reports"], "classes": len(field["labels"]),
            **metrics_report(cm, labels)}


def _csv_row(device: str, received: float, r: dict) -> list:
    latency = r.get("latency_ms", {})
    macro = r.get("macro", {}) if isinstance(r.get("macro"), dict) else {}
    drift = r.get("drift") or {}  # checked at the door (edge.report): a level, four PSI, a frame count
    cells = [device, received, r["id"], r["run_id"], r["seq"], r["window"]["start"], r["window"]["end"], r["frames"],
             r["evaluated"], r["dropped"], r["fps"], latency.get("inference", {}).get("p50"),
             latency.get("inference", {}).get("p99"), latency.get("frame", {}).get("p50"), r["accuracy"],
             macro.get("f1"), drift.get("level"), max(drift["psi"].values()) if drift else None, drift.get("frames"),
             r["model_sha256"]]
    return [_inert(cell) for cell in cells]


def _inert(cell):
    """A text cell a spreadsheet will not run: one starting with a formula character gets a leading quote
    (OWASP's advice on CSV injection). Numbers stay numbers."""
    return f"'{cell}" if isinstance(cell, str) and cell.startswith(FORMULA) else cell
