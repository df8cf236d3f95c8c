"""What a request's URL may not hold: a NUL character (%00), in its path or its query. No name the host keeps
has one (names, ids and labels are checked as they come in); SQLite would look one up and find nothing, but
PostgreSQL refuses such text outright (a 500 from any endpoint that looks it up): both answer 400, before any
endpoint."""

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

REFUSAL = "the URL holds a NUL character (%00), which no name on this host has: remove it"


class RefuseNul:
    """Pure ASGI middleware: a request whose URL holds a NUL is answered 400 with {"error": ...}."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"] or b"%00" in scope["query_string"]):
            await JSONResponse({"error": REFUSAL}, status_code=400)(scope, receive, send)
            return
        await self.app(scope, receive, send)
