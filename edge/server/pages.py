"""GET /healthz (no token: what a load balancer or systemd watchdog asks) and GET / (the dashboard, whose
data comes from the API)."""

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse

from edge.server import database

DASHBOARD = Path(__file__).with_name("dashboard.html")


async def healthz(request: Request):
    host = request.app.state.host
    try:
        host.db().execute("SELECT 1").fetchone()
    except database.Error as e:
        return JSONResponse({"status": "error", "error": database.describe(e, host.options.db)}, status_code=503)
    if host.disk_full():
        return JSONResponse(
            {
                "status": "disk full",
                "error": f"the disk of {Path(host.options.db).name} is full: devices keep their reports until space "
                "is freed",
            },
            status_code=503,
        )
    return JSONResponse({"status": "ok"})


async def dashboard(request: Request):
    return HTMLResponse(DASHBOARD.read_text(encoding="utf-8"))
