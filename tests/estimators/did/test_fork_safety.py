"""The staggered estimator's helper thread survives fork (#19): multiprocessing workers must not hang."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    """
    import multiprocessing as mp
    import numpy as np
    from evaltool.estimators.did.method_staggered import DidStaggeredOptions, fit_did_staggered
    from tests.conftest import make_panel

    def fit(_):
        frame = make_panel(seed=3).rename(columns={"urn": "school"})
        frame["join_year"] = frame["join_year"].where(frame["join_year"] > 0)
        options = DidStaggeredOptions(name="s", method="did_staggered", bootstrap_draws=199, placebo_shift=None)
        estimates, *_ = fit_did_staggered(frame, "att8", options=options, rng=np.random.default_rng(1))
        return round(estimates[0].estimate, 10), round(estimates[0].std_error, 10)

    if __name__ == "__main__":
        parent = fit(0)                      # starts the helper thread in the parent
        with mp.get_context("fork").Pool(2) as pool:
            children = pool.map(fit, range(2))
        assert children == [parent, parent], (children, parent)
        print("ok")
    """
)


def test_forked_workers_finish_after_a_fit_in_the_parent(tmp_path):
    script = tmp_path / "fork_check.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")
