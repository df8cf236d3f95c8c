"""Who may do what on `edge serve`, Starlette's way: `TokenBackend` turns a request's bearer token into a
user and scopes; `requires` guards an endpoint; `readable` tells which devices a caller may read.

Scopes: a device token has `device` (it posts its own reports and frames) and `own` (it reads its own); a
reader token has `reader`, `read` (every device) and `label`; a publisher token `publisher` and `publish` (it
pushes model versions). Every token has `models` (it reads model versions and their files). Where reads are
open (a loopback host, or --open-reads), every request has `read`, `label` and `models`, with or without a
token."""

import functools

from starlette.authentication import AuthCredentials, AuthenticationBackend, AuthenticationError, BaseUser
from starlette.requests import HTTPConnection, Request

from edge.server import database, store
from edge.server.bodies import fail

MISSING = "missing token: send 'Authorization: Bearer TOKEN' (edge token create NAME makes one)"
ROLE_SCOPES = {
    "device": ("device", "own", "models"),
    "reader": ("reader", "read", "label", "models"),
    "publisher": ("publisher", "publish", "models"),
}
OPEN_SCOPES = ("read", "label", "models")


class Caller(BaseUser):
    """The holder of a known token."""

    def __init__(self, name: str, role: str):
        self.name, self.role = name, role

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.name


class Stranger(BaseUser):
    """A request without a known token, and why: what a 401 says."""

    def __init__(self, problem: str):
        self.problem = problem

    @property
    def is_authenticated(self) -> bool:
        return False

    @property
    def display_name(self) -> str:
        return ""


class DatabaseUnavailable(AuthenticationError):
    """The database could not look the token up: the request is answered 503 (edge.server.app), not 401."""


class TokenBackend(AuthenticationBackend):
    def __init__(self, host):
        self.host = host
        self.open = () if host.options.protect_reads else OPEN_SCOPES

    async def authenticate(self, conn: HTTPConnection):
        scheme, _, token = conn.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return AuthCredentials(list(self.open)), Stranger(MISSING)
        try:
            found = store.who(self.host.db(), token.strip())
        except database.OperationalError as e:  # raised here it would pass Starlette's handlers by: a 500
            raise DatabaseUnavailable(database.describe(e, self.host.options.db)) from None
        if found is None:
            return AuthCredentials(list(self.open)), Stranger("unknown or revoked token")
        name, role = found
        return AuthCredentials([*ROLE_SCOPES.get(role, ()), *self.open]), Caller(name, role)


def refuse(request: Request, refusal: str):
    """401 for a caller without a known token (saying why), else 403 with `refusal` ({name}, {role})."""
    user = request.user
    if not user.is_authenticated:
        fail(401, user.problem)
    fail(403, refusal.format(name=user.name, role=user.role))


def requires(scope: str, refusal: str):
    """Guard an endpoint: a request without `scope` gets 401 or 403 (`refuse`)."""

    def guard(endpoint):
        @functools.wraps(endpoint)
        async def guarded(request: Request):
            if scope not in request.auth.scopes:
                refuse(request, refusal)
            return await endpoint(request)

        return guarded

    return guard


def readable(request: Request, device: str | None = None) -> str | None:
    """The one device this caller may read (None: any), or 403 for `device` if not that one."""
    scopes = request.auth.scopes
    if "read" in scopes:
        return None
    if "own" not in scopes:
        refuse(request, "'{name}' has a {role} token, which reads nothing")
    if device is not None and device != request.user.name:
        fail(403, f"'{request.user.name}' has a device token: it reads its own reports only (a reader token reads all)")
    return request.user.name
