"""The package layout (issue 16): no import cycle, and the import-linter contracts of pyproject.toml hold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    """Every import of evaltool's modules: top level, inside functions and under ``TYPE_CHECKING``."""
    return grimp.build_graph("evaltool", cache_dir=None)


def import_cycles(graph: grimp.ImportGraph) -> list[tuple[list[str], int]]:
    """One cycle through each strongly connected group of modules, and the group's size (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return [(_cycle_in(graph, group), len(group)) for group in groups]


def _cycle_in(graph: grimp.ImportGraph, group: list[str]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected group, as a list of modules."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for module in frontier:
            for child in sorted(graph.find_modules_directly_imported_by(module) & members):
                if child == start:
                    return paths[module] + [start]
                if child not in paths:
                    paths[child] = paths[module] + [child]
                    following.append(child)
        frontier = following
    return group


def _describe(graph: grimp.ImportGraph, cycle: list[str]) -> str:
    steps = []
    for importer, imported in zip(cycle, cycle[1:], strict=False):
        lines = sorted({d["line_number"] for d in graph.get_import_details(importer=importer, imported=imported)})
        steps.append(f"{importer} (line {', '.join(map(str, lines))}) -> {imported}")
    return "\n    ".join(steps)


def test_no_import_cycles(graph):
    cycles = import_cycles(graph)
    message = "\n".join(
        f"  {size} modules import each other, e.g. this cycle of {len(cycle) - 1}:\n    {_describe(graph, cycle)}"
        for cycle, size in cycles
    )
    assert not cycles, f"{len(cycles)} import cycle(s) among evaltool's modules:\n{message}"


def test_import_linter_contracts():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    assert lint_imports.exists(), f"{lint_imports} is missing; install the dev extra: pip install -e '.[dev]'"
    done = subprocess.run(
        [str(lint_imports), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, f"import-linter contracts broken:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
