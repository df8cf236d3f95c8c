"""The README and docs/ hold to the code: the layer table in docs/layout.md is edge/layers.py's LAYERS, and every
relative link points at a file (and a heading) that exists. Both drifted once; these keep them from drifting again."""

import re
from pathlib import Path

from edge.layers import LAYERS, NAMES

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
ROW = re.compile(r"^\| (\w+) \| `([\w.]+)` \|")


def table_rows(text: str) -> list[tuple[str, str]]:
    """The (layer, module) rows of the layer table."""
    return [(m[1], m[2]) for m in map(ROW.match, text.splitlines()) if m]


def prose(text: str) -> str:
    """The text outside fenced code blocks, where a `[x](y)` is code, not a link."""
    return "\n".join(part for n, part in enumerate(re.split(r"^ *```.*$", text, flags=re.M)) if n % 2 == 0)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(m) for m in re.findall(r"^#+ (.+)$", prose(path.read_text()), flags=re.M)}


def test_the_layer_table_is_layers_py():
    rows = table_rows((ROOT / "docs" / "layout.md").read_text())
    expected = sorted((NAMES[layer], name) for layer, names in LAYERS.items() for name in names)
    missing = sorted(set(expected) - set(rows))
    extra = sorted(set(rows) - set(expected))
    assert not missing, f"docs/layout.md lacks these (layer, module) rows of edge/layers.py: {missing}"
    assert not extra, f"docs/layout.md lists (layer, module) rows that edge/layers.py does not: {extra}"
    assert len(rows) == len(expected), "docs/layout.md lists a module twice"


def test_the_table_check_sees_a_missing_or_misplaced_module():
    # The check must be able to fail: a row dropped, and one under the wrong layer.
    text = (ROOT / "docs" / "layout.md").read_text()
    rows = table_rows(text)
    assert ("front", "edge.cli") in rows and ("contract", "edge.bundle") in rows
    tampered = table_rows(text.replace("| front | `edge.cli` |", "| host | `edge.cli` |"))
    assert ("front", "edge.cli") not in tampered and ("host", "edge.cli") in tampered


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto: are not checked here
            continue
        file, _, anchor = target.partition("#")
        where = (page.parent / file).resolve() if file else page
        if not where.exists():
            broken.append(f"{target}: no such file")
        elif anchor and where.suffix == ".md" and anchor not in anchors(where):
            broken.append(f"{target}: no such heading")
    return broken


def test_every_relative_link_points_at_a_file_and_heading():
    broken = {str(p.relative_to(ROOT)): b for p in PAGES if (b := broken_links(p))}
    assert not broken, broken


def test_the_link_check_sees_a_broken_link(tmp_path):
    (tmp_path / "a.md").write_text(
        "# Title\n\n[ok](a.md#title) [gone](b.md) [wrong](a.md#nowhere)\n```\n[code](not-a-link.md)\n```\n"
    )
    assert broken_links(tmp_path / "a.md") == ["b.md: no such file", "a.md#nowhere: no such heading"]


def test_slugs_are_githubs():
    assert slug("Is `edge eval`'s latency honest?") == "is-edge-evals-latency-honest"
    assert slug("Collect, label, retrain") == "collect-label-retrain"
    assert slug("The Raspberry Pi AI Camera (IMX500)") == "the-raspberry-pi-ai-camera-imx500"
