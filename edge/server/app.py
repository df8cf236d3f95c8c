"""The HTTP API and dashboard of `edge serve` (Starlette, served by uvicorn).

    POST /api/v1/reports                 a batch {"reports": [...]}, Authorization: Bearer DEVICE_TOKEN
    GET  /api/v1/devices                 every device: its latest report, counts, field accuracy
    GET  /api/v1/devices/{id}/reports    ?limit=N&since=UNIX
    GET  /api/v1/devices/{id}/field      the metrics of its latest field evaluation
    GET  /api/v1/export.csv              one row a report
    GET  /healthz                        no token
    GET  /                               the dashboard (its data comes from the API)

Bad input never gets a 500: 400 bad JSON, 401 no or unknown token, 403 a token writing for another device
(or reading another's, where reads are protected), 404, 413 body over the limit, 422 a report that breaks the
schema or could not be served back, 503 a full disk, with a JSON {"error": "..."} that says what.
A POST's answer names the ids the host now holds (`ids`): a device lets a report go only on that word.
"""
import csv
import gc
import io
import json
import shutil
import socket
import sqlite3
import threading
from dataclasses import dataclass
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
from edge.report import check_report
from edge.server import store
from edge.server.writer import Writer

MAX_BATCH = 500  # reports in one POST
MIN_BODY = 16_384  # bytes: one report of a many-class model must fit
DRAIN = 8  # bodies up to this many times max_body are read to the end before the 413
MIN_FREE = 1 << 20  # bytes to be freed on a full disk before reports are taken again
RETRY_AFTER = "60"  # seconds, with a 503
LOOPBACK = ("127.0.0.1", "localhost", "::1")
DASHBOARD = Path(__file__).with_name("dashboard.html")
CSV_COLUMNS = ("device", "received", "id", "run_id", "seq", "window_start", "window_end", "frames", "evaluated",
               "dropped", "fps", "inference_p50_ms", "inference_p99_ms", "frame_p50_ms", "accuracy", "macro_f1",
               "drift_level", "drift_psi_max", "drift_frames", "model_sha256")
FORMULA = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may take a cell starting with as a formula


@dataclass
class ServeOptions:
    db: Path
    max_body: int = 1_000_000  # bytes
    # Reads need a reader token (or a device token, for that device's own): None protects them unless
    # the server listens on loopback only.
    protect_reads: bool | None = None
    host: str = "127.0.0.1"
    port: int = 8765

    def check(self) -> None:
        if not 1 <= self.port <= 65535:
            raise EdgeError(f"--port {self.port}: give a port from 1 to 65535, e.g. 8765")
        if self.max_body < MIN_BODY:
            raise EdgeError(f"--max-body {self.max_body}: give at least {MIN_BODY} bytes (one report of a "
                            "1000-class model is about 60 KB; the default is 1000000)")
        if self.protect_reads is None:
            self.protect_reads = self.host not in LOOPBACK


def create_app(options: ServeOptions, log=print) -> Starlette:
    options.check()
    local = threading.local()

    def db() -> sqlite3.Connection:
        """This thread's read-only connection: the event loop's, or a reading thread's (sqlite3 connections
        are not for sharing between threads)."""
        if not hasattr(local, "db"):
            local.db = store.open_reader(options.db)
        return local.db

    written = store.open_db(options.db)  # the writer's: this opens (or creates) the store and checks its version
    summaries = store.summaries(written)  # device -> what reads need; kept up to date by the writer
    writer = Writer(written, summaries, store.open_reader(options.db))
    full_since = None  # free bytes when a write last failed for a full disk; None once writes succeed

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
        return full_since is not None and free_bytes() < full_since + MIN_FREE

    async def body(request: Request) -> bytes:
        """The body, or 413 past `max_body`. A body somewhat over is read to its end and dropped, so the
        client is still listening when the 413 comes (a client cut off mid-send sees only a reset);
        one far over is cut off."""
        too_big = f"body over {options.max_body} bytes: send fewer reports a batch"
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > DRAIN * options.max_body):
            fail(413 if length.isdigit() else 400, too_big if length.isdigit() else "bad Content-Length")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > DRAIN * options.max_body:
                break
            if size <= options.max_body:
                chunks.append(chunk)
        if size > options.max_body:
            fail(413, too_big)
        return b"".join(chunks)

    async def post_reports(request: Request):
        nonlocal full_since
        device, role = caller(request)
        if role != "device":
            fail(403, f"'{device}' has a {role} token; reports need a device token")
        data = await body(request)
        try:
            batch = orjson.loads(data)  # refuses NaN, Infinity, numbers past a double and lone surrogates
        except orjson.JSONDecodeError as e:
            fail(400, f"body is not JSON ({str(e)[:120]})")
        if not isinstance(batch, dict) or not isinstance(batch.get("reports"), list):
            fail(422, 'send {"reports": [report, ...]}')
        reports = batch["reports"]
        if not 1 <= len(reports) <= MAX_BATCH:
            fail(422, f"send 1 to {MAX_BATCH} reports a batch, not {len(reports)}")
        for n, report in enumerate(reports):
            problem = check_report(report)
            if problem:
                fail(422, f"report {n}: {problem}")
            if report["device_id"] != device:
                fail(403, f"report {n} is for device '{report['device_id']}' but the token is '{device}''s")
        full = (503, "the host's disk is full: keep the reports and retry later", {"Retry-After": RETRY_AFTER})
        if disk_full():  # as /healthz says, until space is freed
            fail(*full)
        try:
            outcome = await writer.store(device, reports)
        except sqlite3.OperationalError as e:
            if e.sqlite_errorcode != sqlite3.SQLITE_FULL:
                fail(503, f"the host's database cannot take reports now ({e}): retry later",
                     {"Retry-After": RETRY_AFTER})
            full_since = free_bytes()
            log(f"the disk of {options.db} is full: reports are refused (503) until space is freed")
            fail(*full)
        full_since = None
        for report_id in outcome.conflicts:
            log(f"'{device}' sent report {report_id} again with other content: the first is kept")
        return JSONResponse({"stored": len(outcome.stored), "duplicates": len(outcome.duplicates),
                             "conflicts": outcome.conflicts,
                             "ids": outcome.stored + outcome.duplicates + outcome.conflicts})

    # Reads from memory run on the event loop; reads from the database run in a pool of threads (Starlette
    # runs plain functions there).
    async def get_devices(request: Request):
        found = store.devices(summaries, readable(request))
        for d in found:
            d["field"] = d["field"] and _field_summary(d["field"])
        return _json_response('{"devices":[' + ",".join(_with_raw(d, "latest") for d in found) + "]}")

    def known(device: str) -> None:
        if device not in summaries:
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
        reports = store.recent_reports(summaries, device, limit, since)
        if reports is None:  # older than memory holds: from the database, in a thread
            reports = await run_in_threadpool(lambda: store.device_reports(db(), device, limit, since))
        return _json_response(_with_raw({"device": device, "reports": "[" + ",".join(reports) + "]"}, "reports"))

    async def get_device_field(request: Request):
        device = request.path_params["device"]
        readable(request, device)
        known(device)
        field = store.devices(summaries, device)[0]["field"]
        return JSONResponse({"device": device, "field": field and _field_metrics(field)})

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

    app = Starlette(routes=[
        Route("/", dashboard),
        Route("/healthz", healthz),
        Route("/api/v1/reports", post_reports, methods=["POST"]),
        Route("/api/v1/devices", get_devices),
        Route("/api/v1/devices/{device}/reports", get_device_reports),
        Route("/api/v1/devices/{device}/field", get_device_field),
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


def _field_summary(field: dict) -> dict:
    """What the device list shows of a field evaluation: cheap, whatever the number of classes."""
    n = sum(field["cells"].values())
    right = sum(count for (truth, predicted), count in field["cells"].items() if truth == predicted)
    return {"run_id": field["run_id"], "reports": field["reports"], "n": n, "accuracy": right / n if n else 0.0}


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


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port or a foreign address is a one-line error."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror:
        raise EdgeError(f"--host {host}: not an address of this machine; give e.g. 127.0.0.1 or 0.0.0.0") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait out TIME_WAIT
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise EdgeError(f"cannot listen on {host}:{port} ({e.strerror}): another program (an edge serve "
                        "already running?) has it, or choose another --port or --host") from None
    sock.listen(2048)
    return sock


def run_server(options: ServeOptions, log=print) -> None:
    """Run the server until interrupted."""
    import uvicorn

    app = create_app(options, log)
    sock = listen(options.host, options.port)
    if options.host not in LOOPBACK:
        log(f"listening on {options.host}: tokens cross the network in the clear unless a TLS proxy (nginx, "
            "Caddy) is in front")
        if not options.protect_reads:
            log("--open-reads: anyone who can reach this port reads every device's reports")
    reads = "reads need a token" if options.protect_reads else "reads are open"
    log(f"edge serve: dashboard at http://{options.host}:{options.port}/ ({reads}), storing into {options.db}")
    gc.freeze()  # what start-up made lives as long as the server: the collector need not walk it again
    # proxy_headers off: a client's address is never used, and reading forwarded ones cost every request
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, proxy_headers=False)).run(
        sockets=[sock])
