"""A non-editable install runs sweeps from the repository root (issue 12, item 9).

``pip install .`` puts ``models/`` and ``scenarios/`` inside the installed ``biohybrid``;
the checkout's ``biohybrid/`` has neither. Run from the repository root, a process pool's
fork server (a ``python -c`` in the working directory) imported the checkout's
``biohybrid`` instead of the installed one and every run failed with
``ModuleNotFoundError: biohybrid.models...``. And with the checkout itself first on
``sys.path`` nothing found the bundled models at all.

The interpreter runs with ``-S`` (no site-packages processing) and the virtualenv's
site-packages on ``PYTHONPATH`` for the dependencies: that leaves out this checkout's
editable install, which would otherwise hide the problem.
"""

from __future__ import annotations

import json
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEADLINE = 600.0  # s, for a loaded machine; never an assertion on speed

SWEEP = """
import json, sys
import biohybrid

if __name__ == "__main__":
    df = biohybrid.sweep(
        "demo", {"s_max": [0.1, 1.0]}, workers=2, out=sys.argv[1],
        overrides={"t_end": 60.0, "nx": 12, "ny": 12, "seed_radius": 2.0},
        metrics=lambda r: {"worker_biohybrid": __import__("biohybrid").__file__},
    )
    print(json.dumps({
        "main": biohybrid.__file__,
        "status": df["status"].tolist(),
        "error": df["error"].tolist(),
        "workers": df["worker_biohybrid"].tolist() if "worker_biohybrid" in df else [],
        "models": sorted(__import__("biohybrid.registry").registry.available_models()),
    }))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install --no-deps --target`` of this checkout (not editable)."""
    target = tmp_path_factory.mktemp("install") / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
         str(target), str(REPO)],
        check=True, capture_output=True, timeout=DEADLINE,
    )  # fmt: skip
    assert (target / "biohybrid" / "models" / "demo").is_dir()
    return target


def _env(cli_env: dict, *path: Path) -> dict:
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    return dict(cli_env, PYTHONPATH=":".join([*map(str, path), *deps]))


def _sweep(tmp: Path, name: str, cmd: list[str], env: dict) -> subprocess.Popen:
    out = tmp / name
    return subprocess.Popen(
        [sys.executable, "-S", *cmd, str(out)],
        cwd=REPO,  # the repository root: its biohybrid/ is right there
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sweeps_from_the_repository_root_find_the_models(
    installed: Path, tmp_path: Path, cli_env: dict
) -> None:
    script = tmp_path / "sweep_script.py"
    script.write_text(SWEEP, encoding="utf-8")
    procs = {
        # a script elsewhere (like benchmarks/sweep.py): the installed copy is imported
        "installed": _sweep(tmp_path, "a", [str(script)], _env(cli_env, installed)),
        # the checkout first on sys.path (``python -c`` in the repository root)
        "checkout": _sweep(
            tmp_path,
            "b",
            ["-c", SWEEP],
            _env(cli_env, installed),
        ),
    }
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=DEADLINE)
        assert proc.returncode == 0, f"{name}: {stderr}"
        got = json.loads(stdout.splitlines()[-1])
        assert got["status"] == ["completed", "completed"], (name, got["error"])
        assert "demo" in got["models"] and "astrocyte" in got["models"]
        expected = installed if name == "installed" else REPO
        assert Path(got["main"]).is_relative_to(expected), got["main"]
        # the workers ran the same biohybrid as the sweep's own process
        assert got["workers"] == [got["main"]] * 2, got
