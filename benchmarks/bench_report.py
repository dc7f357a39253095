"""Time of building the report from a results folder (run by hand: .venv/bin/python benchmarks/bench_report.py).

Runs the sample config once (configs/federation_impact.yaml) into a temporary folder, then rebuilds
report.html/report.md from it several times and prints the median time, the HTML size and the machine load.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from evaltool.config import load_config
from evaltool.pipeline import execute
from evaltool.report.build import write_report

ROOT = Path(__file__).resolve().parents[1]


def main(repeats: int = 7) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(ROOT / "configs" / "federation_impact.yaml")
        _, out = execute(config, Path(tmp) / "out")
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            write_report(out)
            times.append(time.perf_counter() - start)
        size = (out / "report.html").stat().st_size
    print(f"write_report on the sample output: median {statistics.median(times) * 1000:.0f} ms over {repeats} runs")
    print(f"report.html size: {size / 1024:.0f} KiB")
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")


if __name__ == "__main__":
    main()
