"""What does one call cost `edge run`'s process, by outlet? The outlets (edge.mqtt's Publisher to a throwaway
Debian mosquitto, edge.webhook's Hook to a local HTTP receiver, both) sent --calls call events 3 ms apart, as a
frame loop at ~300 fps hands them over; the process's CPU (every thread: the caller's, paho's, the hook's) a call,
against the same loop sending nothing (the baseline, same run), and the time `send` holds the caller.

    python benchmarks/call_cost_bench.py              # 1000 calls an outlet
"""

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge import mqtt, webhook  # noqa: E402
from edge.calls import call_event  # noqa: E402
from edge.version import cpu_name  # noqa: E402
from tests.mosquitto import Broker  # noqa: E402
from tests.webhooks import Receiver  # noqa: E402

GAP = 0.003  # seconds between calls


def cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def loop(outlets: list, calls: int) -> tuple[float, float]:
    """(CPU ms a call, µs `send` held the caller a call), the outlets closed (their queues sent) before the CPU
    is read."""
    event = call_event("pi-1", "cat", 0.93, 12, time.time(), {"sha256": "a" * 64, "name": "cams", "version": 3})
    time.sleep(1)  # connected
    started, held = cpu(), 0.0
    for _ in range(calls):
        at = time.perf_counter()
        for outlet in outlets:
            outlet.send("call", event)
        held += time.perf_counter() - at
        time.sleep(GAP)
    for outlet in outlets:
        outlet.close(10)
    return 1000 * (cpu() - started) / calls, 1e6 * held / calls


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    rows = {}
    with Broker() as broker, Receiver() as hook:

        def publisher():
            return mqtt.Publisher(mqtt.broker(broker.url("edge")), None, "pi-1", lambda m: None, discovery=False)

        def hooked():
            return webhook.Hook(hook.url, lambda m: None, announce=False)

        for name, make in (("nothing (baseline)", list), ("mqtt", lambda: [publisher()])):
            rows[name] = loop(make(), args.calls)
        rows["webhook"] = loop([hooked()], args.calls)
        rows["mqtt + webhook"] = loop([publisher(), hooked()], args.calls)
    base = rows["nothing (baseline)"][0]
    print(f"CPU: {cpu_name()}; {args.calls} calls {GAP * 1000:g} ms apart an outlet")
    print(f"{'outlet':20}{'CPU ms a call':>15}{'less baseline':>15}{'send µs':>10}{'ratio':>8}")
    for name, (ms, held) in rows.items():
        print(f"{name:20}{ms:15.3f}{ms - base:15.3f}{held:10.1f}{ms / base:8.1f}")


if __name__ == "__main__":
    main()
