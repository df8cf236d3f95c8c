"""GET /api/v1/export.csv: one row a report, for a spreadsheet."""

import csv
import io

from starlette.requests import Request
from starlette.responses import StreamingResponse

from edge.server import store
from edge.server.auth import readable

CSV_COLUMNS = (
    "device",
    "received",
    "id",
    "run_id",
    "seq",
    "window_start",
    "window_end",
    "frames",
    "evaluated",
    "dropped",
    "fps",
    "inference_p50_ms",
    "inference_p99_ms",
    "frame_p50_ms",
    "accuracy",
    "macro_f1",
    "drift_level",
    "drift_psi_max",
    "drift_frames",
    "model_sha256",
)
FORMULA = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may take a cell starting with as a formula
CHUNK = 65536  # characters of CSV sent at a time


async def export_csv(request: Request):
    only = readable(request)
    reader = store.open_reader(request.app.state.host.options.db)  # its own connection: streamed from a thread

    def rows():
        try:
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(CSV_COLUMNS)
            for device, received, r in store.all_reports(reader, only):
                writer.writerow(_csv_row(device, received, r))
                if out.tell() > CHUNK:
                    yield out.getvalue()
                    out.seek(0)
                    out.truncate()
            yield out.getvalue()
        finally:
            reader.close()

    return StreamingResponse(
        rows(), media_type="text/csv", headers={"content-disposition": 'attachment; filename="edge-reports.csv"'}
    )


def _csv_row(device: str, received: float, r: dict) -> list:
    latency = r.get("latency_ms", {})
    macro = r.get("macro", {}) if isinstance(r.get("macro"), dict) else {}
    drift = r.get("drift") or {}  # checked at the door (edge.report): a level, four PSI, a frame count
    cells = [
        device,
        received,
        r["id"],
        r["run_id"],
        r["seq"],
        r["window"]["start"],
        r["window"]["end"],
        r["frames"],
        r["evaluated"],
        r["dropped"],
        r["fps"],
        latency.get("inference", {}).get("p50"),
        latency.get("inference", {}).get("p99"),
        latency.get("frame", {}).get("p50"),
        r["accuracy"],
        macro.get("f1"),
        drift.get("level"),
        max(drift["psi"].values()) if drift else None,
        drift.get("frames"),
        r["model_sha256"],
    ]
    return [_inert(cell) for cell in cells]


def _inert(cell):
    """A text cell a spreadsheet will not run: one starting with a formula character gets a leading quote
    (OWASP's advice on CSV injection). Numbers stay numbers."""
    return f"'{cell}" if isinstance(cell, str) and cell.startswith(FORMULA) else cell
