"""What each board is, needs and gets: one table. `edge devices list`, `edge devices show NAME`,
`edge convert --device NAME` (its quantization), `edge package --device NAME` (its setup).

Reference latencies are published figures for common models, with their source, to hold field
numbers against; they were not measured by edge.
"""

from dataclasses import dataclass

from edge.errors import EdgeError, choose

CORAL = "coral.ai/docs/edgetpu/benchmarks (Table 1, C++ benchmark, model only)"
PI_SSD = "published TFLite CPU benchmark of SSD MobileNetV2 300x300 (figure not re-checked by edge)"
EDGETPU_SRAM_MB = 8  # on-chip memory; weights that do not fit stream from the host every inference
EDGETPU_CACHE_MIB = 7  # what of it caches parameters: a full chip reports about 7 MiB used, a few bytes free
IMX500_MEMORY_MB = 8  # the AI Camera's sensor holds the whole network, weights and activations, in this
IMX500_CONVERTER = "imxconv-tf"  # Sony's, in the imx500 toolchain (edge.devices.toolchains)
UNVERIFIED_RUNTIME = (
    "Not yet run on Edge TPU hardware by edge: Coral's libedgetpu1-std was built against an older "
    "TFLite; if the delegate fails to load or prepare with ai-edge-litert, try tflite-runtime or a "
    "libedgetpu build for your runtime, and compile with edgetpu_compiler -m 13 if it says "
    "'requires runtime version'."
)


@dataclass(frozen=True)
class Reference:
    model: str
    input: int  # pixels
    ms: float
    where: str  # the hardware the figure is for
    source: str


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    arch: str  # what `uname -m` says
    os: str
    python: str
    runtime: str
    delegate: str | None  # an edge.interpreter.DELEGATES name
    quantize: str  # what `edge convert --device` exports
    io_type: str
    requires_int8: bool  # True: nothing else runs on it
    threads: int | None  # default interpreter threads; None: all cores
    compiler: str | None  # a program that must compile the model for the board
    camera: str
    apt: tuple[str, ...]  # system packages the setup script installs
    groups: tuple[str, ...]  # the service user's groups: cameras, and the Edge TPU's device node
    notes: str
    references: tuple[Reference, ...]


PI_CAMERA = (
    "USB cameras: /dev/video0 (V4L2; ask for MJPG: --camera-mode 640x480@30/MJPG). CSI cameras on "
    "Bookworm go through libcamera: rpicam-vid MJPG over tcp://127.0.0.1:8888, or a libcamerasrc GStreamer "
    "pipeline with Pi OS's OpenCV."
)
CORAL_REFERENCES = (
    Reference("MobileNet v2", 224, 2.6, "desktop CPU + USB Accelerator (USB 3.0)", CORAL),
    Reference("Inception v1", 224, 3.4, "desktop CPU + USB Accelerator (USB 3.0)", CORAL),
    Reference("Inception v4", 299, 85, "desktop CPU + USB Accelerator (USB 3.0)", CORAL),
    Reference("ResNet-50 V1", 299, 49, "desktop CPU + USB Accelerator (USB 3.0)", CORAL),
    Reference("VGG16", 224, 296, "desktop CPU + USB Accelerator (USB 3.0)", CORAL),
)

# A table, a row a choice: kept as it reads, not one value a line.
# fmt: off
PROFILES = {p.name: p for p in (
    Profile(
        "rpi4", "Raspberry Pi 4 Model B (4x Cortex-A72)", "aarch64", "Raspberry Pi OS 64-bit (Bookworm)", "3.11",
        "ai-edge-litert", None, "int8", "uint8", False, 4, None, PI_CAMERA, ("python3-venv",), ("video",),
        "Full int8 is about twice as fast as float32 on the CPU; dynamic-range is slower than float32.",
        (Reference("SSD MobileNetV2", 300, 112.6, "Raspberry Pi 4 CPU", PI_SSD),)),
    Profile(
        "rpi5", "Raspberry Pi 5 (4x Cortex-A76)", "aarch64", "Raspberry Pi OS 64-bit (Bookworm)", "3.11",
        "ai-edge-litert", None, "int8", "uint8", False, 4, None, PI_CAMERA, ("python3-venv",), ("video",),
        "Full int8 is about twice as fast as float32 on the CPU; use active cooling for long runs.",
        (Reference("SSD MobileNetV2", 300, 23.5, "Raspberry Pi 5 CPU", PI_SSD),)),
    Profile(
        "coral-usb", "Coral USB Accelerator (Edge TPU) on a Pi or a PC", "aarch64 or x86_64",
        "Raspberry Pi OS 64-bit (Bookworm) or Debian/Ubuntu", "3.11", "ai-edge-litert + libedgetpu1-std",
        "edgetpu", "int8", "uint8", True, 4, "edgetpu_compiler",
        PI_CAMERA, ("python3-venv", "libedgetpu1-std"), ("video", "plugdev"),  # libedgetpu's udev rule: plugdev
        f"Needs full int8 with uint8 IO, compiled by edgetpu_compiler (x86-64 Linux only). {EDGETPU_SRAM_MB} MB of "
        f"on-chip memory: bigger models stream weights over USB each inference. Use a USB 3 port. {UNVERIFIED_RUNTIME}",
        CORAL_REFERENCES + (Reference("MobileNet v2", 224, 4.55, "Raspberry Pi 4 + USB Accelerator",
                                      "pycoral reference figure (not re-checked by edge)"),)),
    Profile(
        "coral-devboard", "Coral Dev Board (NXP i.MX 8M, 4x Cortex-A53 + Edge TPU)", "aarch64",
        "Mendel Linux 5 (Debian 10); it ships Python 3.7, edge needs 3.10+ (install one, e.g. with pyenv)", "3.10+",
        "ai-edge-litert + libedgetpu1-std", "edgetpu", "int8", "uint8", True, 4, "edgetpu_compiler",
        "USB cameras: /dev/video1 and up (the Coral camera is /dev/video0 via the MIPI-CSI driver).",
        ("python3-venv", "libedgetpu1-std"), ("video", "apex"),  # /dev/apex_0 belongs to apex
        f"Edge TPU on the PCIe bus (/dev/apex_0). Same model requirements as the USB Accelerator; "
        f"{EDGETPU_SRAM_MB} MB on-chip memory. {UNVERIFIED_RUNTIME}",
        (Reference("MobileNet v2", 224, 2.6, "Dev Board Edge TPU", CORAL),
         Reference("ResNet-50 V1", 299, 56, "Dev Board Edge TPU", CORAL),
         Reference("VGG16", 224, 343, "Dev Board Edge TPU", CORAL),
         Reference("MobileNet v2", 224, 122, "Dev Board CPU only (Cortex-A53)", CORAL))),
    Profile(
        "rpi-ai-camera", "Raspberry Pi AI Camera (Sony IMX500) on a Raspberry Pi 4 or 5", "aarch64",
        "Raspberry Pi OS 64-bit (Bookworm)", "3.11", "the IMX500 sensor, through picamera2 (Pi OS's python3-picamera2)",
        None, "int8", "uint8", False, 4, IMX500_CONVERTER,
        "The AI Camera on the CSI port: --source imx500 (picamera2's IMX500 helper loads the bundle's network.rpk "
        "into the sensor, and each frame comes with the network's output).",
        ("python3-venv", "python3-picamera2", "imx500-all", "imx500-tools"), ("video",),
        f"The network runs on the image sensor: {IMX500_MEMORY_MB} MB hold its weights and activations. Converting "
        "needs the imx500 toolchain on the host (edge devices toolchain install imx500: Sony's MCT and imxconv-tf, "
        "Java 17); setup.sh makes network.rpk with imx500-package on the Pi. The bundle's model.tflite runs on the "
        "Pi's CPU as before. Not yet run on an AI Camera by edge: the sensor's accuracy in the manifest is MCT's "
        "simulation on the host. Published: TinyTracker (a 600 KB gaze model) runs in 0.86 ms on the IMX500, "
        "19 ms end to end with the sensor's readout (Bonazzi et al. 2023, arXiv:2307.07813).",
        ()),
    Profile(
        "linux-x86", "Any x86-64 Linux machine", "x86_64", "Debian/Ubuntu or similar", "3.10+", "ai-edge-litert",
        None, "int8", "uint8", False, None, None,
        "USB cameras: /dev/videoN; IP cameras: rtsp:// or http:// URLs.", ("python3-venv",), ("video",),
        "Full int8 is about twice as fast as float32 here (XNNPACK).",
        (Reference("MobileNet v2", 224, 51, "desktop CPU (Coral's comparison column)", CORAL),
         Reference("MobileNetV2 int8", 224, 1.8, "2-core x86 VM, 2 threads, LiteRT 2.3",
                   "measured by edge: python benchmarks/eval_latency_bench.py"))),
)}
# fmt: on


def get_profile(name: str) -> Profile:
    return PROFILES[choose("device", name, PROFILES)]


def check_model(profile: Profile, mode: str | None, io_type: str | None, what: str, fix: str = "") -> None:
    """EdgeError if a board that runs only one kind of model (the Edge TPU: full int8, uint8 IO) is given
    another; `what` names the model or the options that made it."""
    if profile.requires_int8 and (mode, io_type) != (profile.quantize, profile.io_type):
        raise EdgeError(
            f"{what}: {mode} with {io_type} IO, but {profile.name} runs only full {profile.quantize} "
            f"with {profile.io_type} IO: {fix or f'edge convert ... --device {profile.name}'}"
        )
