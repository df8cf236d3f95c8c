"""Writing result files so that a crash or a bad path never leaves half a file behind."""

import json
import os
from pathlib import Path

from edge.errors import EdgeError


def check_writable(path, option: str, suffixes: tuple[str, ...] = ()) -> Path:
    """A file to write, refused before any long work, not after it."""
    path = Path(path)
    if suffixes and not path.name.lower().endswith(suffixes):
        raise EdgeError(f"{option} {path}: give a file name ending in {' or '.join(suffixes)}")
    if path.is_dir():
        raise EdgeError(f"{option} {path} is a folder: give a file name")
    if not path.parent.is_dir():
        raise EdgeError(f"{option} {path}: folder {path.parent} does not exist; create it or choose another path")
    return path


def check_folder(path, option: str, holds: str) -> Path:
    """A folder to write `holds` into (made if new), refused before any long work if it is a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise EdgeError(f"{option} {path} is a file: give a folder for {holds}")
    return path


def write_file(path, data: bytes, mode: int = 0o666) -> None:
    """Write and flush to the disk; a new file gets `mode` (less the umask) from its first byte."""
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_json(path, data) -> Path:
    """`data` as indented JSON, written atomically."""
    return write_atomic(path, (json.dumps(data, indent=2) + "\n").encode())


def write_atomic(path, data: bytes, private: bool = False) -> Path:
    """The file appears whole at `path` or not at all (an older one stays until then); `private`: readable
    by its owner only (mode 0600), from the first byte."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.unlink(missing_ok=True)  # a leftover of a crashed run with this pid keeps its own mode
        write_file(tmp, data, 0o600 if private else 0o666)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
