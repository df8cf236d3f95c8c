"""Collected frames on the real `edge serve`: stored once by id, served back byte for byte, labelled or
discarded; refused with the right code and a reason when hostile, and never a 500."""

import copy
import json
import sqlite3
import urllib.request

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.frame_record import make_record
from edge.report import new_id
from edge.server import schema
from tests.hostile import HOSTILE, NUL_TEXT, hostile_json
from tests.server import Server, token

LABELS = ["0", "1", "2", "3"]


@pytest.fixture(scope="module")
def scans(digits):
    """Three real scans of a 2 as JPEG bytes."""
    return [cv2.imencode(".jpg", cv2.imread(str(p)))[1].tobytes() for p in sorted((digits / "2").iterdir())[:3]]


def record(picture: bytes, device="pi-door", **changes) -> dict:
    meta = {
        "id": new_id(),
        "device_id": device,
        "run_id": "a" * 32,
        "model_sha256": "b" * 64,
        "time": 1.8e9,
        "frame": 7,
        "source": "0",
        "reason": "uncertain",
        "label": "2",
        "top_k": [["2", 0.55], ["3", 0.45]],
        "scores": [0.0, 0.0, 0.55, 0.45],
        "labels": LABELS,
        "truth": None,
    }
    return {**make_record(picture, meta), **changes}


@pytest.fixture(scope="module")
def host(new_db):
    db = new_db()
    tokens = {name: token(db, name) for name in ("pi-door", "pi-yard")}
    tokens["alice"] = token(db, "alice", "--reader")
    with Server(db, None, "--max-frame-body", "30000").start() as server:
        yield server, tokens


def post(server, frames, secret):
    return server.request("POST", "/api/v1/frames", {"frames": frames}, secret)


def test_frames_are_stored_once_and_served_back(host, scans):
    server, tokens = host
    frames = [record(jpeg) for jpeg in scans[:2]]
    ids = [f["id"] for f in frames]
    assert post(server, frames, tokens["pi-door"]) == (200, {"stored": 2, "duplicates": 0, "conflicts": [], "ids": ids})
    assert post(server, frames, tokens["pi-door"]) == (200, {"stored": 0, "duplicates": 2, "conflicts": [], "ids": ids})
    other = {**frames[0], "jpeg": record(scans[2])["jpeg"]}  # the same id, another picture
    assert post(server, [other], tokens["pi-door"])[1]["conflicts"] == [frames[0]["id"]]
    status, listing = server.get("/api/v1/devices/pi-door/frames")
    assert status == 200 and [f["id"] for f in listing["frames"]] == ids
    assert listing["counts"] == {"new": 2, "labelled": 0, "discarded": 0, "dropped": 0, "refused": 0}
    kept = listing["frames"][0]
    assert {k: kept[k] for k in frames[0] if k != "jpeg"} == {k: v for k, v in frames[0].items() if k != "jpeg"}
    assert (kept["labelled_as"], kept["discarded"]) == (None, False)
    with urllib.request.urlopen(f"{server.url}/api/v1/frames/{ids[0]}.jpg") as response:
        assert response.read() == scans[0] and response.headers["Content-Type"] == "image/jpeg"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert server.get("/api/v1/frames/nothing-here.jpg")[0] == 404


def test_labels_and_discards(host, scans):
    server, tokens = host
    frames = [record(jpeg, "pi-yard") for jpeg in scans]
    assert post(server, frames, tokens["pi-yard"])[0] == 200
    one, two, three = (f["id"] for f in frames)
    label = lambda frame_id, body: server.request("POST", f"/api/v1/frames/{frame_id}/label", body)  # noqa: E731
    assert label(one, {"label": "2"}) == (200, {"id": one, "labelled_as": "2", "discarded": False})
    assert label(two, {"label": "a coffee mug"})[0] == 200  # a class the model does not know
    assert label(three, {"discard": True}) == (200, {"id": three, "labelled_as": None, "discarded": True})
    assert server.get("/api/v1/devices/pi-yard/frames")[1]["counts"] == {
        "new": 0,
        "labelled": 2,
        "discarded": 1,
        "dropped": 0,
        "refused": 0,
    }
    assert label(three, {"label": "3"})[0] == 200  # a label takes a frame back from the discarded
    assert label(two, {"label": None})[0] == 200  # and none makes it new again
    _, listing = server.get("/api/v1/devices/pi-yard/frames?state=all")
    assert [(f["labelled_as"], f["discarded"]) for f in listing["frames"]] == [
        ("2", False),
        (None, False),
        ("3", False),
    ]
    assert listing["counts"] == {"new": 1, "labelled": 2, "discarded": 0, "dropped": 0, "refused": 0}
    for body, code, error in [
        (
            {"label": "../../etc"},
            422,
            "a label names a folder of the exported data set on Linux, macOS and Windows alike: it holds U+002F",
        ),
        ({"label": ".hidden"}, 422, "a label names"),
        ({"label": "x" * 101}, 422, "a label names"),
        ({"label": "😀" * 100}, 422, "a label names"),
        ({"label": "CON"}, 422, "a label names"),
        ({"label": "cat."}, 422, "a label names"),
        ({"label": "a\u202eb"}, 422, "a label names"),
        ({"label": 7}, 422, "a label names"),
        ({"label": "ok", "discard": True}, 422, '"discard" is true or false'),
        ({"discard": "yes"}, 422, '"discard" is true or false'),
        ({"colour": "red"}, 422, 'send {"label"'),
        (b"not json", 400, "send JSON"),
    ]:
        status, answer = label(one, body)
        assert (status, answer["error"][: len(error)]) == (code, error), body
    assert label("no-such-frame", {"label": "2"}) == (404, {"error": "no frame 'no-such-frame'"})


@pytest.mark.parametrize(
    "change, code, error",
    [
        (dict(jpeg="not base64!"), 422, "frame 0: 'jpeg' must be a JPEG of at most 8 MB"),
        (dict(jpeg="iVBORw0KGgo="), 422, "frame 0: 'jpeg' must be a JPEG"),  # a PNG's signature
        (dict(scores=[0.5, 0.5]), 422, "frame 0: 'scores' must hold one score a label"),
        (dict(scores=[0.1, 0.2, 1.5, 0.1]), 422, "frame 0: 'scores' must be 1-1000 scores from 0 to 1"),
        (dict(reason="because"), 422, "frame 0: 'reason' must be one of uncertain, wrong, disagree, every"),
        (dict(labels="0,1,2,3"), 422, "frame 0: 'labels' must be a list of 1-1000 class names"),
        (dict(format_version=2), 422, "frame 0: 'format_version' must be 1"),
        (dict(device_id="pi-yard"), 403, "frame 0 is for device 'pi-yard' but the token is for 'pi-door'"),
    ],
)
def test_bad_frames_are_refused_with_the_reason(host, scans, change, code, error):
    server, tokens = host
    status, answer = post(server, [record(scans[0], **change)], tokens["pi-door"])
    assert (status, answer["error"][: len(error)]) == (code, error)


def test_a_jpeg_that_does_not_decode_or_claims_a_huge_size_is_refused(host, scans):
    server, tokens = host
    broken = scans[0][:200] + bytes(len(scans[0]) - 200)  # headers whole, the picture zeroed
    assert post(server, [record(broken)], tokens["pi-door"]) == (
        422,
        {"error": "frame 0: 'jpeg' does not decode as a JPEG image"},
    )
    at = scans[0].index(b"\xff\xc0")  # the frame header: height and width follow its length and precision
    huge = scans[0][: at + 5] + (20000).to_bytes(2, "big") * 2 + scans[0][at + 9 :]
    status, answer = post(server, [record(huge)], tokens["pi-door"])
    assert status == 422 and answer["error"].startswith("frame 0: 'jpeg' must be a JPEG of at most 8 MB and 8192")


def test_who_may_post_and_how_much(host, scans):
    server, tokens = host
    assert post(server, [record(scans[0])], None)[0] == 401
    assert post(server, [record(scans[0])], "nope") == (401, {"error": "unknown or revoked token"})
    assert post(server, [record(scans[0])], tokens["alice"]) == (
        403,
        {"error": "'alice' has a reader token; frames need a device token"},
    )
    corner = cv2.imencode(".jpg", cv2.imdecode(np.frombuffer(scans[0], np.uint8), cv2.IMREAD_COLOR)[:8, :8])[1]
    assert post(server, [record(corner.tobytes())] * 17, tokens["pi-door"]) == (
        422,
        {"error": "send 1 to 16 frames a batch, not 17"},
    )
    big = [record(scans[0], source="x" * 900) for _ in range(16)]  # some 50 KB, over this host's 30000
    assert post(server, big, tokens["pi-door"]) == (413, {"error": "body over 30000 bytes: send fewer frames a batch"})
    assert server.post([], tokens["pi-door"])[0] == 422  # reports keep their own endpoint and limits


def test_protected_frames_are_read_by_readers_and_their_own_device(new_db, scans):
    db = new_db()
    door, yard, alice = token(db, "pi-door"), token(db, "pi-yard"), token(db, "alice", "--reader")
    server = Server(db, None, "--protect-reads").start()
    try:
        frame = record(scans[0])
        assert post(server, [frame], door)[0] == 200
        jpeg = f"/api/v1/frames/{frame['id']}.jpg"
        assert server.get(jpeg)[0] == server.get("/api/v1/frames/no-such-frame.jpg")[0] == 401  # nothing told
        assert [server.get(jpeg, who)[0] for who in (door, alice, yard)] == [200, 200, 403]
        assert server.get("/api/v1/frames/no-such-frame.jpg", yard)[0] == 404
        assert server.get("/api/v1/devices/pi-door/frames", yard)[0] == 403
        label = f"/api/v1/frames/{frame['id']}/label"
        assert server.request("POST", label, {"label": "2"}, door) == (
            403,
            {"error": "'pi-door' has a device token: labelling needs a reader token (edge token create NAME --reader)"},
        )
        assert server.request("POST", label, {"label": "2"})[0] == 401
        assert server.request("POST", label, {"label": "2"}, alice)[0] == 200
    finally:
        server.stop()


def test_a_version_2_store_is_upgraded_in_place(tmp_path, scans):
    db = tmp_path / "edge.db"
    secret = token(db, "pi-door")
    old = sqlite3.connect(db)
    old.execute("DROP TABLE frames")
    old.execute("PRAGMA user_version = 2")
    old.close()
    server = Server(db).start()  # as an edge that kept no frames left it
    try:
        assert post(server, [record(scans[0])], secret)[0] == 200
    finally:
        server.stop()
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == schema.VERSION == 7


PLACES = (
    ("extra",),
    ("source",),
    ("label",),
    ("truth",),
    ("top_k", 0, 0),
    ("labels", 1),
    ("time",),
    ("frame",),
    ("top_k",),
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_whatever_frame_is_accepted_comes_back_out_of_every_read(host, scans, data):
    server, tokens = host
    frame = copy.deepcopy(record(scans[1], "pi-door"))
    *path, last = data.draw(st.sampled_from(PLACES))
    where = frame
    for key in path:
        where = where[key]
    where[last] = data.draw(HOSTILE | st.text(max_size=30))
    code, answer = server.request(
        "POST", "/api/v1/frames", hostile_json({"frames": [frame]}).encode(), tokens["pi-door"]
    )
    assert code in (200, 400, 422), (code, answer)
    status, listing = server.get("/api/v1/devices/pi-door/frames?state=all&limit=1000")
    assert status == 200
    if code == 200:
        key = path[0] if path else last
        held = next(f for f in listing["frames"] if f["id"] == frame["id"])
        assert held[key] == json.loads(hostile_json({key: frame[key]}))[key]
        assert server.get(f"/api/v1/frames/{frame['id']}.jpg")[0] == 200


def test_an_integer_past_64_bits_is_refused_not_rounded(host, scans):
    """orjson reads -2^63-1 or 10^40 as the nearest double: taken, it would come back as another number."""
    server, tokens = host
    for number in (-(2**63) - 1, 10**40):
        frame = {**record(scans[1], "pi-door"), "extra": number}
        code, answer = server.request(
            "POST", "/api/v1/frames", json.dumps({"frames": [frame]}).encode(), tokens["pi-door"]
        )
        assert code == 422 and "'extra' is not a finite number below +-2^63" in answer["error"], answer


def test_a_model_s_own_class_is_labelled_whatever_it_holds(host, scans):
    """A bare .tflite's class may be "a/b": it labels its frame, where a person's "a/b" is refused."""
    server, tokens = host
    frame = record(scans[0], "pi-yard", labels=["0", "1", "a/b", "3"])
    assert post(server, [frame], tokens["pi-yard"])[0] == 200
    label = lambda body: server.request("POST", f"/api/v1/frames/{frame['id']}/label", body)  # noqa: E731
    assert label({"label": "a/b"}) == (200, {"id": frame["id"], "labelled_as": "a/b", "discarded": False})
    status, answer = label({"label": "c/d"})
    assert status == 422 and "U+002F" in answer["error"]


def test_a_model_s_own_class_holding_a_nul_labels_its_frame_never_a_500(host, scans):
    server, tokens = host
    frame = record(scans[0], "pi-yard", labels=["0", "1", NUL_TEXT, "3"])
    assert post(server, [frame], tokens["pi-yard"])[0] == 200
    status, answer = server.request("POST", f"/api/v1/frames/{frame['id']}/label", {"label": NUL_TEXT})
    assert status == 422 and "U+0000" in answer["error"], (status, answer)  # held to a person's rules
    _, listing = server.get("/api/v1/devices/pi-yard/frames?state=all")
    held = next(f for f in listing["frames"] if f["id"] == frame["id"])
    assert held["labelled_as"] is None
