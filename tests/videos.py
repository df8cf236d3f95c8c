"""Videos of real scans, written the way a test needs them (FFV1: lossless, so every frame is known)."""
from pathlib import Path

import cv2


def scan_video(path: Path, folder: Path, frames: int, fourcc: str = "FFV1", fps: float = 30.0) -> Path:
    """`frames` frames of the scans in `folder` (48x48), in name order, again and again."""
    scans = [cv2.imread(str(p)) for p in sorted(Path(folder).iterdir())]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, (48, 48))
    for i in range(frames):
        writer.write(scans[i % len(scans)])
    writer.release()
    return path
