"""Scan every SBML Test Suite case in a folder: pass / refused (with reason) / fail counts.

Usage: ``python benchmarks/sbml_test_suite.py [SUITE_DIR] [--list]``; SUITE_DIR defaults to
``../shared/sbml-test-suite/ode`` beside the checkout. Prints one JSON line with the counts
and, with ``--list``, one line per case that did not pass.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

from biohybrid.importers.suite import run_case


def main(argv: list[str]) -> int:
    """Run the scan."""
    args = [a for a in argv if not a.startswith("--")]
    here = Path(__file__).resolve()
    default = next(
        (
            base / "shared/sbml-test-suite/ode"
            for base in (here.parents[2], here.parents[3])  # beside the checkout or worktrees
            if (base / "shared/sbml-test-suite/ode").is_dir()
        ),
        here.parents[2] / "shared/sbml-test-suite/ode",
    )
    suite = Path(args[0]) if args else default
    folders = sorted(p for p in suite.iterdir() if p.is_dir() and p.name.isdigit())
    start = time.perf_counter()
    results = []
    for folder in folders:
        try:
            results.append(run_case(folder))
        except Exception as exc:  # a crash is a failure to report, not a reason to stop
            from biohybrid.importers.suite import CaseResult

            results.append(CaseResult(folder.name, "fail", f"crash: {type(exc).__name__}: {exc}"))
    counts = Counter(r.status for r in results)
    refused = Counter(r.reason.split(":")[0] for r in results if r.status == "refused")
    summary = {
        "cases": len(results),
        "pass": counts["pass"],
        "refused": counts["refused"],
        "fail": counts["fail"],
        "refused_by_reason": dict(refused),
        "seconds": round(time.perf_counter() - start, 1),
    }
    if "--list" in argv:
        for r in results:
            if r.status != "pass":
                print(f"{r.case} {r.status}: {r.reason}"[:300])
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
