"""edge.webhook against a real HTTP server (tests/webhooks.py): retried through 5xx, a hook that hangs,
refusals, redirects not followed, the queue's bound; and `edge run --webhook --calls-required` stopping."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge import webhook
from tests.videos import scan_video
from tests.webhooks import Receiver


def wait(condition, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "not within the time given"
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(webhook, "BACKOFF_FIRST", 0.05)
    monkeypatch.setattr(webhook, "TIMEOUT", 1.0)


def test_5xx_and_429_are_tried_again_and_the_order_is_kept():
    log: list[str] = []
    with Receiver(statuses=[500, 503, 429, 200]) as hook:
        sender = webhook.Hook(hook.url + "/in", log.append)
        for n in range(3):
            sender.send("call", {"label": str(n)})
        done = sender.close(10.0)
        got = hook.events()
    assert [e.get("label", e.get("status")) for e in got] == ["online", "0", "1", "2", "offline"]
    assert (done["delivered"], done["failures"], done["rejected"], done["unsent"]) == (5, 3, 0, 0)
    assert log == [f"--webhook: http://127.0.0.1:{hook.port}/*** failed (500 Internal Server Error); trying again, "
                   "events wait (up to 1000)"]  # fmt: skip


def test_a_hook_that_hangs_never_holds_the_sender_nor_the_end():
    with Receiver(delay=30) as hook:
        sender = webhook.Hook(hook.url, lambda line: None)
        started = time.monotonic()
        for n in range(50):
            sender.send("call", {"label": str(n)})
        assert time.monotonic() - started < 0.5  # queued
        done = sender.close(0.5)
        ended = time.monotonic() - started
    assert ended < 0.5 + webhook.TIMEOUT + 1.0, ended
    assert done["delivered"] == 0 and done["unsent"] == 52 and done["failures"] >= 1


def test_past_its_bound_the_oldest_events_go(monkeypatch):
    monkeypatch.setattr(webhook, "QUEUE", 5)
    with Receiver(statuses=[503] * 3 + [200]) as hook:
        sender = webhook.Hook(hook.url, lambda line: None)
        wait(lambda: hook.requests >= 1)  # "online" is being tried: the rest queue behind it
        for n in range(10):
            sender.send("call", {"label": str(n)})
        done = sender.close(10.0)
        got = [e.get("label", e.get("status")) for e in hook.events()]
    assert done["dropped"] == 7  # of "online", 0-9 and "offline": 13 kept to 5, the head tried meanwhile
    assert got[-1] == "offline" and got[-5:-1] == ["6", "7", "8", "9"]


@pytest.mark.parametrize("status, refused", [(404, True), (403, True), (400, False), (302, False)])
def test_a_refusal_drops_the_event_a_redirect_is_not_followed(status, refused):
    log: list[str] = []
    with Receiver(statuses=[status]) as hook:
        sender = webhook.Hook(hook.url + "/secret-path", log.append)
        sender.send("call", {"label": "3"})
        done = sender.close(5.0)
    assert (done["rejected"], done["delivered"], done["failures"], done["unsent"]) == (3, 0, 0, 0)
    assert (done["refused"] is not None) == refused
    assert "secret-path" not in repr(done) + "".join(log)


def test_edge_run_with_calls_required_stops_on_a_refused_hook(e2e, digits, tmp_path, monkeypatch):
    video = scan_video(tmp_path / "twos.avi", Path(digits) / "2", 600)  # 20 s in real time: stopped long before
    with Receiver(statuses=[404]) as hook:
        monkeypatch.setenv("EDGE_WEBHOOK", hook.url + "/hooks/s3cret")  # a hook's URL is its secret: not in ps
        r = subprocess.run(
            [sys.executable, "-m", "edge.cli", "run", e2e.bundle, "--source", str(video), "--realtime"]
            + ["--calls-required"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        f"error: --calls-required: the web hook http://127.0.0.1:{hook.port}/*** answered 404 Not Found"
    )
    assert "s3cret" not in r.stderr


def test_one_connection_carries_every_event_and_one_closed_while_idle_is_opened_again():
    """Kept open: 20 events, one connection. A hook that closes an idle connection (as web servers do): the next
    event goes on a new one at once, no failure counted, nothing lost."""
    with Receiver() as hook:
        sender = webhook.Hook(hook.url, lambda line: None, announce=False)
        for n in range(20):
            sender.send("call", {"label": str(n)})
        wait(lambda: len(hook.events()) == 20)
        assert hook.connections == 1
        sender.close(5)
    with Receiver(idle=0.2) as hook:
        sender = webhook.Hook(hook.url, lambda line: None, announce=False)
        sender.send("call", {"label": "0"})
        wait(lambda: len(hook.events()) == 1)
        time.sleep(0.5)  # the hook has closed it meanwhile
        sender.send("call", {"label": "1"})
        done = sender.close(5)
        assert [e["label"] for e in hook.events()] == ["0", "1"] and hook.connections == 2
    assert done["delivered"] == 2 and done["failures"] == 0
