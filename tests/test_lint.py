"""ruff and mypy over the code, as pyproject.toml configures them: the README's test command runs them, and a finding
fails the test with the tool's own lines."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Where each sub-package of `edge` lies (pyproject's [tool.setuptools.package-dir]): mypy names a module by its folder.
PACKAGE_DIRS = {"converter": "convert", "eval": "eval", "devices": "devices"}


def run(*args: str, cwd: Path) -> tuple[int, str]:
    r = subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def test_ruff_finds_nothing():
    _, out = run("ruff", "check", "--no-cache", "--output-format", "concise", ".", cwd=ROOT)
    assert out.strip() == "All checks passed!", out


def test_the_code_is_as_ruff_formats_it():
    code, out = run("ruff", "format", "--check", "--no-cache", ".", cwd=ROOT)
    assert code == 0, out  # `ruff format .` writes it so


def package_tree(at: Path) -> Path:
    """The installed layout as links: edge/ holds edge's files and its sub-packages' folders; tests/, benchmarks/."""
    (at / "edge").mkdir(parents=True)
    for entry in (ROOT / "edge").iterdir():
        if entry.name != "__pycache__":
            (at / "edge" / entry.name).symlink_to(entry)
    for name, folder in PACKAGE_DIRS.items():
        (at / "edge" / name).symlink_to(ROOT / folder)
    for folder in ("tests", "benchmarks"):
        (at / folder).symlink_to(ROOT / folder)
    return at


def source_path(line: str) -> str:
    """A line of mypy's about a file in the tree, about the file in the repository."""
    for name, folder in PACKAGE_DIRS.items():
        if line.startswith(f"edge/{name}/"):
            return folder + line[len(f"edge/{name}") :]
    return line


def test_mypy_finds_nothing(tmp_path):
    tree = package_tree(tmp_path / "tree")
    # The cache is kept between runs (it holds module names, not the tree's paths): a warm run takes seconds.
    code, out = run(
        "mypy",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "--cache-dir",
        str(ROOT / ".mypy_cache"),
        "--no-error-summary",
        "edge",
        "tests",
        "benchmarks",
        cwd=tree,
    )
    assert code in (0, 1), out  # 2: mypy could not run (a bad option, a crash)
    found = [source_path(line) for line in out.splitlines() if ": error:" in line]
    assert not found, "\n".join(found)
