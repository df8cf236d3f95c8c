"""POST /api/v1/reports: a device's batch {"reports": [...]} (edge.report's schema). The answer says which model
version the device is to run (`run`, edge.server.rollouts_store), when a rollout has named one: following costs
a device no request of its own."""

from starlette.requests import Request

from edge.report import check_report
from edge.server import ingest, rollouts_store
from edge.server.auth import requires

MAX_BATCH = 500  # reports in one POST


@requires("device", "'{name}' has a {role} token; reports need a device token")
async def post_reports(request: Request):
    host = request.app.state.host
    device, reports = await ingest.posted(request, "reports", MAX_BATCH, host.options.max_body, check_report)
    outcome = await ingest.stored(request, "reports", device, reports)
    told = rollouts_store.assignment(host.db(), device)  # a primary-key read: on the loop
    return ingest.answer(request, "reports", device, outcome, **({"run": told} if told else {}))
