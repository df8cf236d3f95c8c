"""POST /api/v1/reports: a device's batch {"reports": [...]} (edge.report's schema)."""
from starlette.requests import Request

from edge.report import check_report
from edge.server import ingest
from edge.server.auth import requires

MAX_BATCH = 500  # reports in one POST


@requires("device", "'{name}' has a {role} token; reports need a device token")
async def post_reports(request: Request):
    host = request.app.state.host
    device, reports = await ingest.posted(request, "reports", MAX_BATCH, host.options.max_body, check_report)
    return ingest.answer(request, "reports", device, await ingest.stored(request, "reports", device, reports))
