"""How fast does `edge serve migrate` move a host's store into PostgreSQL? A SQLite store filled with real
10-class reports as the server stores them (serve_read_bench's fill), copied into a new database of a throwaway
PostgreSQL (tests/postgres.py) by the real command, once a batch size; then the same command again on the
finished copy (what a second run costs: the checks, the counts, nothing copied).

    python benchmarks/migrate_bench.py                          # 100,000 reports, batches of 1000
    python benchmarks/migrate_bench.py --reports 20000 --batches 100,1000,5000

Reported: rows copied per second (every table; the reports are nearly all of them), MB of the source file per
second, and the seconds of the second run.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.serve_read_bench import fill  # noqa: E402
from edge.version import cpu_name  # noqa: E402
from tests.postgres import Cluster  # noqa: E402


def migrate(source: Path, url: str, batch: int) -> tuple[dict, float]:
    """The command's --json result and the wall seconds it took, as its own process."""
    started = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "edge.cli", "serve", "migrate", "--from", str(source), "--to", url]
        + ["--batch", str(batch), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--batches", default="1000", help="batch sizes to copy with, comma-separated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "edge.db"
        filled = fill(source, [f"pi-{i:03d}" for i in range(args.devices)], args.reports, 2)
        megabytes = source.stat().st_size / 1e6
        print(f"{args.reports:,} reports of {args.devices} devices, {megabytes:.0f} MB, filled in {filled:.0f} s")
        print(f"CPU: {cpu_name()}")
        cluster = Cluster()
        try:
            print(f"{'batch':>6} {'rows':>9} {'seconds':>8} {'rows/s':>8} {'MB/s':>6} {'again s':>8}")
            for batch in map(int, args.batches.split(",")):
                url = cluster.url()
                result, seconds = migrate(source, url, batch)
                again, again_seconds = migrate(source, url, batch)
                assert again["copied"] == 0, again
                rows = result["copied"]
                print(
                    f"{batch:>6} {rows:>9,} {seconds:>8.1f} {rows / seconds:>8,.0f} {megabytes / seconds:>6.1f} "
                    f"{again_seconds:>8.1f}"
                )
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
