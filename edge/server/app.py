"""The HTTP API and dashboard of `edge serve` (Starlette, served by uvicorn).

    POST /api/v1/reports                 a batch {"reports": [...]}, Authorization: Bearer DEVICE_TOKEN
    GET  /api/v1/devices                 every device, its last report
    GET  /api/v1/devices/{id}/reports    ?limit=N&since=UNIX
    GET  /api/v1/export.csv              one row a report
    GET  /healthz                        no token
    GET  /                               the dashboard (its data comes from the API)

Bad input never gets a 500: 400 bad JSON, 401 no or unknown token, 403 a token writing for another device
(or reading, where reads need a reader token), 404, 413 body over the limit, 422 a report that breaks the
schema, with a JSON {"error": "..."} that says what. Reads are open unless `protect_reads`.
"""
import csv
import io
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.routing import Route

from edge.eval.metrics import report as metrics_report
from edge.report import check_report
from edge.server import store

MAX_BATCH = 500  # reports in one POST
DRAIN = 8  # bodies up to this many times max_body are read to the end before the 413
DASHBOARD = Path(__file__).with_name("dashboard.html")
CSV_COLUMNS = ("device", "received", "id", "run_id", "seq", "window_start", "window_end", "frames", "evaluated",
               "dropped", "fps", "inference_p50_ms", "inference_p99_ms", "frame_p50_ms", "accuracy", "macro_f1",
               "model_sha256")


@dataclass(frozen=True)
class ServeOptions:
    db: Path
    max_body: int = 1_000_000  # bytes
    protect_reads: bool = False  # reads need a reader (or device) token too


def create_app(options: ServeOptions) -> Starlette:
    db = store.open_db(options.db)

    def fail(status: int, message: str):
        raise HTTPException(status, message)

    def caller(request: Request) -> tuple[str, str]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            fail(401, "missing token: send 'Authorization: Bearer TOKEN' (edge token create NAME makes one)")
        found = store.who(db, token.strip())
        if found is None:
            fail(401, "unknown or revoked token")
        return found

    def may_read(request: Request) -> None:
        if options.protect_reads:
            caller(request)

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
        device, role = caller(request)
        if role != "device":
            fail(403, f"'{device}' has a {role} token; reports need a device token")
        data = await body(request)
        try:
            batch = json.loads(data, parse_constant=_no_constants)
        except (ValueError, RecursionError) as e:
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
        stored, duplicates = store.store_reports(db, device, reports)
        return JSONResponse({"stored": stored, "duplicates": duplicates})

    async def get_devices(request: Request):
        may_read(request)
        found = store.devices(db)
        for d in found:  # the metrics of its latest field evaluation, from the summed confusion matrix
            latest = store.latest_field_matrix(db, d["device"])
            d["field"] = {"run_id": latest[0], **metrics_report(latest[2], latest[1])} if latest else None
        return JSONResponse({"devices": found})

    async def get_device_reports(request: Request):
        may_read(request)
        device = request.path_params["device"]
        try:
            limit = int(request.query_params.get("limit", 500))
            since = float(request.query_params["since"]) if "since" in request.query_params else None
        except ValueError:
            fail(400, "limit must be a whole number and since a Unix time")
        if not 1 <= limit <= 10_000:
            fail(400, "limit must be 1 to 10000")
        reports = store.device_reports(db, device, limit, since)
        if not reports and not store.has_device(db, device):
            fail(404, f"no device '{device}' has reported")
        return JSONResponse({"device": device, "reports": reports})

    async def export_csv(request: Request):
        may_read(request)
        reader = store.open_db(options.db)  # its own connection: streamed from a worker thread

        def rows():
            try:
                out = io.StringIO()
                writer = csv.writer(out)
                writer.writerow(CSV_COLUMNS)
                for device, received, r in store.all_reports(reader):
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
            db.execute("SELECT 1").fetchone()
        except sqlite3.Error as e:
            return JSONResponse({"status": "error", "error": str(e)}, status_code=503)
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
        Route("/api/v1/export.csv", export_csv),
    ], exception_handlers={HTTPException: http_error})
    app.state.db = db
    return app


def _no_constants(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _csv_row(device: str, received: float, r: dict) -> list:
    latency = r.get("latency_ms", {})
    macro = r.get("macro", {}) if isinstance(r.get("macro"), dict) else {}
    return [device, received, r["id"], r["run_id"], r["seq"], r["window"]["start"], r["window"]["end"], r["frames"],
            r["evaluated"], r["dropped"], r["fps"], latency.get("inference", {}).get("p50"),
            latency.get("inference", {}).get("p99"), latency.get("frame", {}).get("p50"), r["accuracy"],
            macro.get("f1"), r["model_sha256"]]


def run_server(options: ServeOptions, host: str = "127.0.0.1", port: int = 8765, log=print) -> None:
    """Run the server until interrupted."""
    import uvicorn

    app = create_app(options)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log(f"listening on {host}: tokens cross the network in the clear unless a TLS proxy (nginx, Caddy) "
            "is in front")
    log(f"edge serve: dashboard at http://{host}:{port}/, storing into {options.db}")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
