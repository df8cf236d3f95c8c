"""Running the `edge` command as a user does: a separate process, its exit code and its output."""

import os
import subprocess
import sys


def edge_cli(*args, cwd=None):
    """`edge ARGS` as its own process; the EDGE_* settings of this environment (a token, a device name, a
    source, a broker's password, a web hook) are not passed on."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("EDGE_TOKEN", "EDGE_DEVICE_ID", "EDGE_SOURCE", "EDGE_MQTT_PASSWORD", "EDGE_WEBHOOK")
    }
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
        check=False,
    )


def edge_cli_without_tensorflow(*args):
    """`edge ...` in a process where importing TensorFlow, Keras or tfmot fails, as on a device install."""
    # Found, as a module with no file that fails to load: importing it fails as a missing one does, and a probe
    # by importlib.util.find_spec (PyTorch's, listing libraries) gets no origin, as where it is absent.
    code = (
        "import importlib.abc, importlib.machinery, sys\n"
        "class Absent(importlib.abc.Loader):\n"
        "    def create_module(self, spec):\n"
        "        raise ModuleNotFoundError(f'No module named {spec.name!r}', name=spec.name)\n"
        "    def exec_module(self, module):\n"
        "        pass\n"
        "class NoTensorFlow(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'tf_keras', 'keras', 'tensorflow_model_optimization'):\n"
        "            return importlib.machinery.ModuleSpec(name, Absent())\n"
        "sys.meta_path.insert(0, NoTensorFlow())\n"
        f"sys.argv = ['edge', *{[str(a) for a in args]!r}]\n"
        "from edge.cli import main\n"
        "main()\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
