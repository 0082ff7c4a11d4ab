"""What pydantic-settings would cost a trademon service at start, against the settings layer it
has (trademon.settings.env), in one run.

Not a test: it prints figures. For each service, fresh interpreters (alternating, so a noisy
neighbour hits both alike) import the service's command module and read its settings, then say
how long that took and their resident memory; the "pydantic-settings" variant also imports
pydantic-settings and validates a BaseSettings model of the same number of variables (what a
port would do at the least). Medians over the runs, and the ratio to the service as it is.

    python benchmarks/settings_cost.py [--runs 15]

Needs pydantic-settings (not a trademon dependency): ``pip install pydantic-settings``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# service -> (its command module, code that reads its settings from the environment, how many variables it reads)
SERVICES = {
    "ib-exporter": ("trademon.ib.cli", "from trademon.ib import config; config.load({})", 24),
    "synthetic": ("trademon.synthetic.cli", "from trademon.synthetic import config; config.load({})", 22),
    "am-config": ("trademon.alertmanager.cli", "from trademon.alertmanager import amwatch", 16),
    "alert-sink": ("trademon.alertsink.app", "pass", 6),
}

CHILD = textwrap.dedent("""
    import time
    t0 = time.perf_counter()
    import importlib
    importlib.import_module({module!r})
    {load}
    if {pydantic}:
        from pydantic_settings import BaseSettings, SettingsConfigDict
        from pydantic import create_model
        fields = {{f"v{{i}}": (float, 1.0) if i % 2 else (str, "x") for i in range({variables})}}
        Model = create_model("Settings", __base__=BaseSettings, **fields)
        Model.model_config = SettingsConfigDict(env_prefix="TRADEMON_BENCH_", secrets_dir=None)
        Model()
    ms = (time.perf_counter() - t0) * 1000
    rss = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:")) / 1024
    print(ms, rss)
""")


def run_once(module: str, load: str, variables: int, pydantic: bool) -> tuple[float, float]:
    code = CHILD.format(module=module, load=load, variables=variables, pydantic=pydantic)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "exporters")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    ms, rss = out.stdout.split()
    return float(ms), float(rss)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    results = {}
    for service, (module, load, variables) in SERVICES.items():
        samples: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for _ in range(args.runs):
            for pydantic in (False, True):
                samples[pydantic].append(run_once(module, load, variables, pydantic))
        med = {p: (statistics.median(s[0] for s in v), statistics.median(s[1] for s in v)) for p, v in samples.items()}
        results[service] = {
            "as_is_ms": round(med[False][0], 1), "pydantic_settings_ms": round(med[True][0], 1),
            "time_ratio": round(med[True][0] / med[False][0], 2),
            "as_is_rss_mib": round(med[False][1], 1), "pydantic_settings_rss_mib": round(med[True][1], 1),
            "rss_added_mib": round(med[True][1] - med[False][1], 1),
        }
        print(f"{service:12} start {med[False][0]:7.1f} ms -> {med[True][0]:7.1f} ms (x{med[True][0] / med[False][0]:.2f}); "
              f"RSS {med[False][1]:6.1f} MiB -> {med[True][1]:6.1f} MiB (+{med[True][1] - med[False][1]:.1f})")
    print(json.dumps({"runs": args.runs, "python": sys.version.split()[0], "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
