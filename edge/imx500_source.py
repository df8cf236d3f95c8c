"""`--source imx500`: the Raspberry Pi AI Camera, whose sensor runs the network itself. picamera2's IMX500 helper
loads network.rpk into the sensor (made on the Pi from the bundle's packerOut.zip by imx500-package, which
setup.sh runs), and every frame then comes with the network's output tensor in its metadata: the scores, read
here in place of an interpreter's. The rest is what `edge run` does with any camera.

picamera2 comes from Raspberry Pi OS (apt python3-picamera2) and is imported only here, when the source is
opened: it is not one of edge's requirements, and where it or the camera is missing the run is refused in one line.
"""

import time
from pathlib import Path

from edge.capture import CameraMode, Frame, FrameReader
from edge.errors import EdgeError

NAME = "imx500"
NETWORK = "network.rpk"  # what imx500-package writes, kept in the bundle folder by setup.sh
SIZE = (640, 480)  # the frames the Pi gets beside the scores (for --preview); the sensor's input is the network's
INSTALL = (
    "on Raspberry Pi OS: sudo apt install python3-picamera2 imx500-all, and run edge from a venv made with "
    "--system-site-packages (edge package's setup.sh does both)"
)


def network_file(target, bundle: Path | None) -> Path:
    """The .rpk to load: given as imx500:PATH, else network.rpk in the bundle folder."""
    if target:
        path = Path(target)
    elif bundle is not None and bundle.is_dir():
        path = bundle / NETWORK
    else:
        raise EdgeError(
            "--source imx500 runs a bundle's network on the AI Camera's sensor: give a bundle folder "
            "converted with --device rpi-ai-camera, or --source imx500:PATH/network.rpk"
        )
    if not path.is_file():
        made = (
            f"make it on the Pi: imx500-package -i {path.parent / 'packerOut.zip'} -o {path.parent} (apt "
            "imx500-tools; setup.sh of edge package --device rpi-ai-camera does it)"
        )
        raise EdgeError(f"--source imx500: {path} does not exist; {made}")
    return path


class SensorReader(FrameReader):
    """FrameReader's interface over picamera2: the newest frame only, each with the sensor's scores as `prepared`
    and its own inference time. Refused here, on the caller's thread, without picamera2 or the camera."""

    THREAD = "edge-imx500"

    def __init__(self, source, network: Path, log=None, tick: float | None = None):
        self._network = network
        super().__init__(source, log=log, tick=tick)

    def _open_source(self) -> None:
        try:
            from picamera2 import Picamera2
            from picamera2.devices import IMX500
        except ImportError as e:
            raise EdgeError(
                f"--source imx500 needs picamera2 with its IMX500 helper ({e.name} is missing): {INSTALL}"
            ) from None
        try:
            self._sensor = IMX500(str(self._network))  # uploads the network to the sensor: minutes the first time
        except RuntimeError as e:
            raise EdgeError(
                f"--source imx500: no AI Camera found ({e}): check its ribbon cable and that "
                "'rpicam-hello --list-cameras' lists an imx500"
            ) from None
        self._camera = Picamera2(self._sensor.camera_num)
        self._camera.start(
            self._camera.create_preview_configuration(main={"size": SIZE, "format": "RGB888"}, buffer_count=12)
        )
        self.delivers, self.jpeg_scale = CameraMode(*SIZE, None, "RGB888"), 1

    def _run(self) -> None:
        try:
            self._read_sensor()
        except BaseException as e:  # noqa: BLE001 -- handed to the consumer, raised there
            self._put(e)
        finally:
            self._camera.close()
        self._put(None, final=True)

    def _read_sensor(self) -> None:
        start, index, waiting = time.perf_counter(), 0, 0
        while not self._stop.is_set():
            reading = time.perf_counter()
            request = self._camera.capture_request()
            try:
                metadata = request.get_metadata()
                image = request.make_array("main")
            finally:
                request.release()
            outputs = self._sensor.get_outputs(metadata, add_batch=True)
            if outputs is None:  # the network is still uploading, or the frame came without its tensor
                waiting += 1
                if waiting == 1:
                    self.log("imx500: waiting for the sensor's first output (the network may still be uploading)")
                continue
            captured = time.perf_counter()
            kpi = self._sensor.get_kpi_info(metadata)  # (network ms, DSP ms) as the sensor measured them
            self.stats.read += 1
            self.stats.seconds["read"] += captured - reading
            # RGB888 is B, G, R in memory (libcamera's naming)
            self._put(
                Frame(
                    index,
                    captured - start,
                    image[..., ::-1],
                    captured,
                    prepared=outputs[0].astype("float32"),
                    inference_ms=kpi[0] if kpi else None,
                )
            )
            index += 1
