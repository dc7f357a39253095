"""Run every shipped config and ``evaltool simulate`` and compare the outputs byte for byte with a reference folder.

Usage (from the repository root, so that configs reading ``sample_data/`` find it)::

    python benchmarks/check_identical_results.py /tmp/layout_before            # compare
    python benchmarks/check_identical_results.py /tmp/layout_before --write    # make the reference

Each config ``configs/NAME.yaml`` is run to ``OUT/NAME`` (``OUT`` is a fresh temporary folder, or the
reference folder with ``--write``); ``evaltool simulate`` writes ``OUT/sim_tidy`` and ``OUT/sim_dfe`` (seed 7,
120 schools) and ``OUT/sim_default`` (the defaults).  Every file is compared except ``manifest.json``
(timings and paths) and the report files (``report.html``/``report.md`` quote the run's time); figures are
compared too.  Exit code 0 if everything is identical, 1 otherwise.
"""

from __future__ import annotations

import argparse
import filecmp
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVALTOOL = Path(sys.executable).with_name("evaltool")
#: Files whose content depends on when and where the run happened.
SKIPPED = {"manifest.json", "report.html", "report.md"}
SIMULATIONS = {
    "sim_tidy": ["--seed", "7", "--schools", "120"],
    "sim_dfe": ["--seed", "7", "--schools", "120", "--layout", "dfe"],
    "sim_default": [],
}


def produce(out: Path) -> None:
    """Run every config and the simulations into ``out``."""
    for config in sorted((ROOT / "configs").glob("*.yaml")):
        _run([str(EVALTOOL), "run", str(config.relative_to(ROOT)), "--out", str(out / config.stem), "--overwrite"])
    for name, options in SIMULATIONS.items():
        _run([str(EVALTOOL), "simulate", *options, "--out", str(out / name), "--overwrite"])


def _run(command: list[str]) -> None:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")


def compare(reference: Path, new: Path) -> tuple[int, list[str]]:
    """The number of files compared and the differences (missing, extra or different files)."""
    problems: list[str] = []
    compared = 0
    names = sorted({p.name for p in reference.iterdir() if p.is_dir()} | {p.name for p in new.iterdir() if p.is_dir()})
    for name in names:
        ref_files = _files(reference / name)
        new_files = _files(new / name)
        problems += [f"{name}/{f}: missing in the new run" for f in sorted(ref_files - new_files)]
        problems += [f"{name}/{f}: not in the reference" for f in sorted(new_files - ref_files)]
        for f in sorted(ref_files & new_files):
            compared += 1
            if not filecmp.cmp(reference / name / f, new / name / f, shallow=False):
                problems.append(f"{name}/{f}: differs")
    return compared, problems


def _files(folder: Path) -> set[str]:
    if not folder.is_dir():
        return set()
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name not in SKIPPED}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="folder with the reference outputs")
    parser.add_argument("--write", action="store_true", help="write the reference instead of comparing")
    args = parser.parse_args(argv)
    if args.write:
        produce(args.reference)
        print(f"reference written to {args.reference}")
        return 0
    with tempfile.TemporaryDirectory(prefix="evaltool_identical_") as tmp:
        produce(Path(tmp))
        compared, problems = compare(args.reference, Path(tmp))
    for problem in problems:
        print(problem)
    print(f"{compared} files compared, {len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
