"""Running the `edge` command as a user does: a separate process, its exit code and its output."""
import subprocess
import sys


def edge_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "edge.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600, check=False)
