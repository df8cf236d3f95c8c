"""The `edge` command's own plumbing (issue 28, part 7): what a command imports, that it closes what it opens,
and options declared once for every command that takes them."""

import os
import subprocess
import sys

from click.testing import CliRunner

from edge.cli import cli
from edge.errors import EdgeError


def imported_by(*args: str) -> set[str]:
    """numpy and OpenCV, if `edge ARGS` (in a process of its own) imported them."""
    code = (
        "import sys\nfrom edge.cli import cli\n"
        f"cli.main({list(args)!r}, standalone_mode=False)\n"
        "print('imported:', *(m for m in ('numpy', 'cv2') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return set(r.stdout.splitlines()[-1].split()[1:])


def test_the_command_itself_imports_neither_numpy_nor_opencv(tmp_path):
    """`edge --version` and the token commands need neither; edge run's options, read when it runs or shows
    --help, bring them. (`edge token list` still imports numpy through edge.server.store's edge.report.)"""
    assert imported_by("--version") == set()
    assert "cv2" not in imported_by("token", "list", "--db", str(tmp_path / "edge.db"))
    assert imported_by("run", "--help") == {"numpy", "cv2"}


def test_token_commands_close_their_database(tmp_path):
    """Even when the command fails: the error the CLI holds on to does not keep the database open."""
    db = tmp_path / "edge.db"
    for args in (["token", "create", "pi-a"], ["token", "list"], ["token", "revoke", "nobody"]):
        result = CliRunner().invoke(cli, [*args, "--db", str(db)])
        assert result.exception is None or isinstance(result.exception, EdgeError), result.output
        assert not [path for path in open_files() if path.startswith(str(db))], args


def open_files() -> list[str]:
    """What this process has open (Linux)."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            held.append(os.readlink(f"/proc/self/fd/{fd}"))
        except FileNotFoundError:  # the listing's own
            pass
    return held


def option_lines(command: str, *flags: str) -> list[str]:
    text = CliRunner().invoke(cli, [*command.split(), "--help"], terminal_width=1000).output
    return [line.split(None, 2)[2] for line in text.splitlines() if line.split()[:1] and line.split()[0] in flags]


def test_shared_options_are_declared_once():
    """--labels and --input-range mean one thing for edge run, eval, bench and quantize; --db for frames
    export and the token commands."""
    model = option_lines("run", "--labels", "--input-range", "--threads", "--delegate")
    assert len(model) == 4
    assert option_lines("eval", "--labels", "--input-range", "--threads", "--delegate") == model
    assert option_lines("bench", "--labels", "--input-range", "--threads") == model[:3]
    assert option_lines("quantize", "--labels", "--input-range") == model[:2]
    db = option_lines("frames export", "--db")
    assert db == ["The database edge serve stores into: its SQLite file, or its postgresql:// URL.  [default: edge.db]"]
    assert all(option_lines(f"token {c}", "--db") == db for c in ("create", "revoke", "list"))


def test_a_host_command_on_a_device_install_says_so_whatever_options_it_is_given(tmp_path):
    """edge convert's options are made from a host module's dataclass, which a device install lacks: given
    them, it says where it runs (one line, exit 2), not click's "no such option"."""
    code = (
        "import importlib.abc, sys\n"
        "class DeviceInstall(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.startswith(('edge.converter', 'edge.devices', 'edge.server')):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, DeviceInstall())\n"
        f"sys.argv = ['edge', 'convert', '--data', {str(tmp_path)!r}, '--epochs', '3']\n"
        "from edge.cli import main\n"
        "main()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("error: edge convert runs on a host, and this is a device install of edge"), r.stderr
