"""Following the host's model versions on a device (`edge run --follow-models --trust KEY`).

The answer to a report names the version the device is to run (edge.server.rollouts_store). A version is
fetched into the models folder on a thread of its own: its signed release first, verified with the trusted
public keys (edge.signing), then each file it names, resumed from where a cut download stopped, into a hidden
`.NAME@V.partial` folder that is renamed to `NAME@V` only once every byte matches the release. It is then
loaded in a fresh interpreter and checked (`check_bundle`) before the run swaps it in; the release is kept
beside the files, so a restart verifies the folder again before it loads it.

`state.json` says which version is active and which ran before it, written whole or not at all; a kill at any
step leaves the active version as it was, or the new one whole. A version that does not reach HEALTHY frames
in MAX_STARTS runs in a row (it crashes the process, say) is reverted to the one before, by the device itself.
"""

import json
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

from edge.bundle import read_bundle
from edge.checks import run_checks
from edge.errors import EdgeError, HostError, OptionError, whole
from edge.files import write_json
from edge.host_client import Refusal, call_json, download
from edge.interpreter import input_detail, invoker
from edge.model import Model, load_model
from edge.options import option
from edge.report import NAME
from edge.signing import check_files, load_public_key, verify

MODELS = Path("~/.local/state/edge/models")
STATE = "state.json"
RELEASE = "release.json"
MAX_STARTS = 3  # runs in a row a version may start without becoming healthy
HEALTHY = 100  # frames a version classifies before it counts as healthy


@dataclass(frozen=True)
class FollowOptions:
    """`edge run --follow-models`: run the model version the host names, fetched, verified and checked."""

    follow: bool = option(
        False,
        "Run the model version the host names in its answers to reports, once it is "
        "verified with a --trust key and checked (needs --report-to).",
        keyword="follow_models",
    )
    trust: tuple | None = option(
        None,
        "A public key the models must be signed with (edge keys create's edge-sign.pub); give it again for another.",
        multiple=True,
        type=click.Path(path_type=Path),
    )
    models: Path = option(MODELS, "Where the versions the host names are kept.", keyword="models_dir")

    def __post_init__(self):
        if self.follow and not self.trust:
            raise OptionError(
                "--follow-models needs --trust KEYDIR/edge-sign.pub: the public key the models are "
                "signed with ('edge keys create' made it)"
            )
        if self.trust and not self.follow:
            raise OptionError("--trust is for --follow-models: add it, or leave --trust out")
        object.__setattr__(self, "models", Path(self.models).expanduser())
        object.__setattr__(self, "trust", tuple(Path(p) for p in self.trust or ()))

    def keys(self) -> list:
        return [load_public_key(path) for path in self.trust or ()]


def name_of(version: dict | None) -> str | None:
    return None if version is None or version.get("version") is None else f"{version['model']}@{version['version']}"


# The state: which version runs, which ran before, and how many runs each started without becoming healthy.
def read_state(models: Path) -> dict:
    try:
        state = json.loads((models / STATE).read_text())
    except (OSError, ValueError):
        state = {}
    return {"active": state.get("active"), "previous": state.get("previous"), "starts": state.get("starts") or {}}


def write_state(models: Path, state: dict) -> None:
    models.mkdir(parents=True, exist_ok=True)
    write_json(models / STATE, state)


def starting(options: FollowOptions, log) -> Path | None:
    """At the start of a run: the active version's folder, verified again (None: the model the run was given).
    Counts the start; a version that started MAX_STARTS times without becoming healthy gives way to the one
    before, as does one whose folder no longer verifies."""
    state = read_state(options.models)
    active = name_of(state["active"])
    if active is None:
        return None
    starts = state["starts"].get(active, 0)
    problem = (
        f"it started {starts} runs without classifying {HEALTHY} frames"
        if starts >= MAX_STARTS
        else _unverified(options, options.models / active)
    )
    if problem:
        log(f"{active} is set aside: {problem}; back to {name_of(state['previous']) or 'the model given'}")
        write_state(options.models, {**state, "active": state["previous"], "previous": None})
        return starting(options, log) if state["previous"] else None
    write_state(options.models, {**state, "starts": {**state["starts"], active: starts + 1}})
    return options.models / active


def _unverified(options: FollowOptions, folder: Path) -> str | None:
    try:
        check_files(folder, verify(json.loads((folder / RELEASE).read_text()), options.keys(), str(folder)))
    except (OSError, ValueError) as e:
        return f"its folder cannot be read ({e})"
    except EdgeError as e:
        return str(e)
    return None


def healthy(options: FollowOptions) -> None:
    """The active version classified HEALTHY frames in this run: its starts count from zero again."""
    state = read_state(options.models)
    active = name_of(state["active"])
    if active and state["starts"].get(active):
        write_state(options.models, {**state, "starts": {**state["starts"], active: 0}})


def activate(options: FollowOptions, version: dict) -> None:
    """Make `version` the active one (whole in its folder), the active one its previous."""
    state = read_state(options.models)
    if state["active"] != version:
        write_state(
            options.models,
            {
                "active": version,
                "previous": state["active"],
                "starts": {**state["starts"], name_of(version): 1} if name_of(version) else state["starts"],
            },
        )


def fetch(options: FollowOptions, host: str, token: str, version: dict, counts: dict | None = None) -> Path:
    """NAME@V's verified folder in the models folder, downloading what is missing (its bytes added to
    counts["bytes"]); HostError or EdgeError if it cannot be had (the run keeps its model)."""
    name = name_of(version)
    assert name, "fetch is for a numbered version"
    folder = options.models / name
    counts = {} if counts is None else counts
    if folder.is_dir():
        return folder
    signed = call_json(f"{host}/api/v1/models/{version['model']}/{version['version']}", token, what="the host")
    if signed.get("withdrawn"):
        raise EdgeError(f"{name} is withdrawn on the host: it is not run")
    release = verify(signed, options.keys(), f"{name} from the host")
    partial = options.models / f".{name}.partial"
    partial.mkdir(parents=True, exist_ok=True)
    for file, facts in release["files"].items():
        url, what = f"{host}/api/v1/files/{facts['sha256']}", f"the host ({name}: {file})"
        counts["bytes"] = counts.get("bytes", 0) + download(url, token, partial / file, facts["bytes"], what)
    try:
        check_files(partial, release)
    except EdgeError:
        shutil.rmtree(partial, ignore_errors=True)  # a wrong byte: fetched again from scratch next time
        raise
    write_json(partial / RELEASE, signed)
    partial.rename(folder)
    return folder


def check_bundle(folder: Path, threads: int | None, delegate: str | None) -> Model:
    """Load a fetched bundle in a fresh interpreter and classify its check images (edge.checks); a bundle
    without any, a mid-grey frame: a model that cannot load, scores them otherwise than when it was made, or
    answers with anything but finite scores, one a class, is refused before it meets a frame."""
    model = load_model(folder, threads=threads, delegate=delegate)
    bundle = read_bundle(folder)
    if bundle.manifest.get("checks"):
        run_checks(model, bundle)
        return model
    detail = input_detail(model.interpreter)
    scores = invoker(model.interpreter)(np.full(detail["shape"], 128, dtype=detail["dtype"]))
    if scores.shape[-1] != len(model.labels) or not np.all(np.isfinite(scores.astype(np.float64))):
        raise EdgeError(
            f"{folder}: the model's check answered {scores.shape[-1]} scores for {len(model.labels)} "
            "labels, or scores that are not numbers: it is not run"
        )
    return model


@dataclass
class Follower:
    """The thread that fetches and checks what the host names, and hands the run a checked model (`take`)."""

    options: FollowOptions
    host: str
    token: str
    threads: int | None = None
    delegate: str | None = None
    log: Callable[[str], None] = print
    given: Callable[[], Model] | None = None  # loads the model the run was started with, for a host that names it
    running: dict | None = None  # the version that runs (None: the model given)
    # What the run needs of a checked model besides it (its fingerprint, its file's hash), made on this thread:
    # reading and hashing the model between two frames would hold the camera's frames up.
    prepare: Callable[[Model], Any] = lambda model: model
    wanted: dict | None = None
    ready: tuple[dict, Any] | None = None  # (version, what prepare made of it), to swap in between frames
    failed: dict = field(default_factory=dict)  # version name -> why, not tried again this run
    counts: dict = field(default_factory=lambda: {"bytes": 0})  # downloaded
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self):
        self._thread = threading.Thread(target=self._loop, name="edge-follow", daemon=True)
        self._thread.start()

    def told(self, run) -> None:
        """The host's word from a report's answer: {"model", "version"} (version None: the model given); an
        answer of another shape is no word of edge serve's, and is ignored."""
        if not (
            isinstance(run, dict)
            and set(run) == {"model", "version"}
            and isinstance(run["model"], str)
            and NAME.fullmatch(run["model"])
            and (run["version"] is None or whole(run["version"], 1))
        ):
            return
        if run != self.wanted:
            self.wanted = run
            self._wake.set()

    def take(self) -> tuple[dict, Model] | None:
        """A checked (version, Model) to swap in now, once; None most of the time (a plain attribute read)."""
        ready, self.ready = self.ready, None
        if ready:
            activate(self.options, ready[0])
            self.running = ready[0]
        return ready

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=30)  # also retries a download the host or the network cut
            self._wake.clear()
            if self._stop.is_set():
                return
            wanted = self.wanted
            if wanted is None or name_of(wanted) == name_of(self.running) or self.ready:
                continue  # nothing new, or a model waits to be taken
            if name_of(wanted) not in self.failed:
                self._get(wanted)

    def _get(self, wanted: dict) -> None:
        name = name_of(wanted)
        try:
            if name is None:  # back to the model the run was started with
                assert self.given, "the run gives the model it was started with"
                self.ready = (wanted, self.prepare(self.given()))
                self.log(
                    f"the host names the model this run was started with ({wanted['model']} before any "
                    "version): it runs from the next frame"
                )
                return
            folder = fetch(self.options, self.host, self.token, wanted, self.counts)
            self.ready = (wanted, self.prepare(check_bundle(folder, self.threads, self.delegate)))
            self.log(f"{name} is verified and checked: it runs from the next frame")
        except Refusal as e:
            self._refused(name, str(e), e.status in (403, 404))
        except HostError as e:
            self.log(f"fetching {name}: {e}")
        except OSError as e:
            self.log(f"fetching {name} into {self.options.models}: {e.strerror or e}; keeping the model that runs")
        except EdgeError as e:
            self._refused(name, str(e), True)

    def _refused(self, name: str | None, why: str, final: bool) -> None:
        self.log(f"{name} is not run: {why}")
        if final:
            self.failed[name] = why
