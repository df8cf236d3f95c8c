"""Talking to `edge serve` from a device or a build machine: the one rule for a host's URL, an opener that follows
no redirect, and what an HTTP error says."""

import json
import os
import urllib.error
import urllib.parse
import urllib.request

from edge.errors import HostError, OptionError

TIMEOUT = 30  # seconds for one request
CHUNK = 1 << 16  # bytes a download is written in


def check_url(url, option: str) -> str:
    """http(s)://HOST[:PORT][/PATH], with nothing urllib would choke on at every retry; neither a user:password@
    nor a query, which may hold a secret, is echoed in the message."""
    if "@" in (url or ""):
        raise OptionError(
            f"{option}: give the host's URL without a user name or password (user:password@), e.g. "
            "http://192.168.1.10:8765; the token (--token or $EDGE_TOKEN) is how it signs in"
        )
    try:
        parts = urllib.parse.urlsplit(url or "")
        parts.port  # noqa: B018 -- raises on a port that is not a number
        good = parts.scheme in ("http", "https") and bool(parts.hostname) and not (parts.query or parts.fragment)
    except ValueError:
        good = False
    if not good:
        raise OptionError(
            f"{option}: give the host's URL, http(s)://HOST[:PORT] with nothing after a ? or #, "
            "e.g. http://192.168.1.10:8765"
        )
    return url.rstrip("/")


class Refusal(HostError):
    """The host answered, refusing: its HTTP status beside the message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _Stay(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: urllib would take the token along to wherever a captive portal points."""

    def redirect_request(self, *args):
        return None


OPENER = urllib.request.build_opener(_Stay)


def error_text(error: urllib.error.HTTPError) -> str:
    """The host's {"error": ...}, or the HTTP reason of an answer that was not edge serve's."""
    try:
        return json.loads(error.read() or b"{}").get("error", error.reason)
    except (ValueError, AttributeError, OSError):
        return str(error.reason)


def call(
    url: str,
    token: str,
    method: str = "GET",
    data: bytes | None = None,
    headers: dict | None = None,
    what: str = "the host",
) -> tuple[int, bytes]:
    """(status, body) of one request; an HTTP error or an unreachable host is a HostError that says which."""
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Authorization": f"Bearer {token}", **(headers or {})}
    )
    try:
        with OPENER.open(request, timeout=TIMEOUT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        raise Refusal(e.code, f"{what} answered HTTP {e.code}: {error_text(e)}") from None
    except (urllib.error.URLError, OSError) as e:
        raise HostError(
            f"cannot reach {what} ({getattr(e, 'reason', e)}): is edge serve running there, and the URL right?"
        ) from None


def call_json(url: str, token: str, method: str = "GET", body=None, what: str = "the host"):
    """The JSON answer of one request with a JSON body (or none)."""
    data = None if body is None else json.dumps(body).encode()
    status, raw = call(url, token, method, data, {"Content-Type": "application/json"}, what)
    try:
        return json.loads(raw)
    except ValueError:
        raise HostError(
            f"{what} answered {status} with something that is not JSON (a proxy or captive portal in between?)"
        ) from None


def download(url: str, token: str, dest, size: int, what: str) -> int:
    """Bring `dest` up to `size` bytes from `url`, resuming from what it holds (a Range from its length), a CHUNK
    at a time, synced to the disk at the end; a file already longer than `size` starts over. The bytes that
    came over the network."""
    have = dest.stat().st_size if dest.exists() else 0
    if have > size:
        dest.unlink()
        have = 0
    if have == size:
        return 0
    came = 0
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Range": f"bytes={have}-"})
    try:
        with OPENER.open(request, timeout=TIMEOUT) as response, open(dest, "ab" if have else "wb") as f:
            if have and response.status != 206:  # the host sent it whole: start the file over
                f.truncate(0)
            while chunk := response.read(CHUNK):
                f.write(chunk)
                came += len(chunk)
            f.flush()
            os.fsync(f.fileno())
    except urllib.error.HTTPError as e:
        raise Refusal(e.code, f"{what} answered HTTP {e.code}: {error_text(e)}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        raise HostError(f"cannot reach {what} ({getattr(e, 'reason', e)}): the download resumes later") from None
    return came
