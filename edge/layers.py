"""The layers of edge, bottom up. A module may import modules of its own layer or of layers below it,
never above, and no two modules may import each other, even lazily (tests/test_layers.py reads every
import statement). What `edge package` ships to a device is every layer but the host's.

    contract  what host and device agree on: version, errors, result files, the bundle, reports, profiles
    measures  metrics, the streaming accumulator, latency statistics, plots (numpy; matplotlib optional)
    device    model loading, images, preprocessing, capture, truth, the run loop, reporting, eval over a folder
    host      convert (TensorFlow), Edge TPU compiling, packaging for a device, the reports server
    front     the Python API (edge/__init__.py), the CLI and its text rendering
"""

from contextlib import contextmanager

from edge.errors import EdgeError
from edge.version import install_hint

CONTRACT, MEASURES, DEVICE, HOST, FRONT = 1, 2, 3, 4, 5
NAMES = {CONTRACT: "contract", MEASURES: "measures", DEVICE: "device", HOST: "host", FRONT: "front"}

# A module's layer is that of its longest listed prefix: "edge.converter" covers every module under it.
LAYERS = {
    CONTRACT: (
        "edge.version",
        "edge.layers",
        "edge.errors",
        "edge.files",
        "edge.options",
        "edge.bundle",
        "edge.report",
        "edge.frame_record",
        "edge.signing",
        "edge.results",
        "edge.devices",
        "edge.devices.profiles",
    ),
    MEASURES: (
        "edge.eval",
        "edge.eval.metrics",
        "edge.eval.accumulator",
        "edge.eval.latency",
        "edge.eval.paired",
        "edge.eval.plots",
        "edge.eval.fingerprint",
    ),
    DEVICE: (
        "edge.quiet",
        "edge.progress",
        "edge.images",
        "edge.folders",
        "edge.preprocess",
        "edge.interpreter",
        "edge.model",
        "edge.capture",
        "edge.truth",
        "edge.preview",
        "edge.signals",
        "edge.outbox",
        "edge.reporter",
        "edge.collect",
        "edge.checks",
        "edge.host_client",
        "edge.health",
        "edge.mqtt",
        "edge.webhook",
        "edge.calls",
        "edge.follow",
        "edge.windows",
        "edge.runner",
        "edge.drift",
        "edge.imx500_source",
        "edge.eval.evaluate",
        "edge.eval.bench",
    ),
    HOST: (
        "edge.converter",
        "edge.publish",
        "edge.devices.edgetpu",
        "edge.devices.package",
        "edge.devices.templates",
        "edge.server",
        "edge.devices.toolchains",
        "edge.devices.imx500",
        "edge.devices.imx500_convert",
    ),
    FRONT: ("edge", "edge.cli", "edge.render"),
}
_BY_NAME = {name: layer for layer, names in LAYERS.items() for name in names}


def layer_of(module: str) -> int | None:
    """The layer of a module (or data folder) of edge, by dotted name; None if it is not edge's."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        layer = _BY_NAME.get(".".join(parts[:end]))
        if layer is not None:
            return layer
    return None


def on_device(module: str) -> bool:
    """Whether a device install carries this module: everything but the host layer."""
    return layer_of(module) not in (HOST, None)


@contextmanager
def host_only(command: str, extra: str | None = None):
    """Around imports of host modules, which a device install does not have: there, a one-line error; and
    with `extra`, the same when a package that extra brings is missing."""
    try:
        yield
    except ModuleNotFoundError as e:
        if (e.name or "").startswith("edge."):
            raise EdgeError(
                f"{command} runs on a host, and this is a device install of edge: on a laptop or "
                f"server, {install_hint('host')}"
            ) from None
        if extra:
            raise EdgeError(f"{command} needs the {extra} extra ({e.name} is missing): {install_hint(extra)}") from None
        raise
