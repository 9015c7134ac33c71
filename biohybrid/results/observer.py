"""The run observer that writes per-cell tables, fields and ParaView files as the run goes.

Each output is on when its run setting (``cells_every``, ``fields_every``, ``vtk_every``, in
the model's time units; checked by :func:`biohybrid.schedule.check_output_intervals`) is
set and non-zero. Outputs are written at ``t = 0`` (when the observer is made) and after
every step that ends on a multiple of the interval, so the last one is at ``t_end``.
Everything is written during the run, never only at the end: a run stopped by a signal
or killed keeps every output time finished before it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from biohybrid.schedule import check_output_intervals

#: Where each output goes in the run folder.
LAYOUT: dict[str, str] = {
    "cells_every": "cells",
    "fields_every": "fields.zarr",
    "vtk_every": "vtk",
}


class OutputObserver:
    """Writes the outputs switched on in ``model.run`` into ``run_dir``.

    Args:
        model: The (populated) model; the outputs at its current time are written now.
        run_dir: The run folder (must exist).

    Attributes:
        intervals: ``{setting: interval}`` of the outputs that are on.
        written: Per output, the files written so far, their bytes and times.
    """

    def __init__(self, model: Any, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.intervals = check_output_intervals(model.run, model.time_units)
        base = model.schedule.base
        self._ticks = {k: round(v / base) for k, v in self.intervals.items()}
        self._row_ticks = round(float(model.run["dt_output"]) / base)
        self.written: dict[str, dict[str, Any]] = {
            k: {"path": LAYOUT[k], "every": v, "times": [], "bytes": 0}
            for k, v in self.intervals.items()
        }
        self._schema = None
        self._fields = None
        self._mesh = None
        self._kinds: list[str] = []
        self._populations = list(model.cells)
        self._pvd: dict[str, list[tuple[float, str]]] = {"fields": [], "cells": []}
        if "cells_every" in self.intervals:
            from biohybrid.results.cells import cells_schema

            (self.run_dir / "cells").mkdir(exist_ok=True)
            self._schema = cells_schema(model)
        if "fields_every" in self.intervals:
            from biohybrid.results.fields import FieldStore

            self._fields = FieldStore(self.run_dir / "fields.zarr")
        if "vtk_every" in self.intervals:
            from biohybrid.results.vtk import lattice_mesh

            (self.run_dir / "vtk").mkdir(exist_ok=True)
            self._mesh = lattice_mesh(model.lattice)
        self._last_tick = -1
        self.observe(model)

    def observe(self, model: Any) -> None:
        """Write every output due at the model's current tick."""
        tick = model.tick
        if tick == self._last_tick:
            return
        self._last_tick = tick
        row = tick // self._row_ticks
        for key, n in self._ticks.items():
            if tick % n == 0:
                nbytes = getattr(self, f"_write_{key.removesuffix('_every')}")(model, row)
                rec = self.written[key]
                rec["times"].append(float(model.t))
                rec["bytes"] += nbytes

    def _write_cells(self, model: Any, row: int) -> int:
        from biohybrid.results.cells import cells_table, write_cells

        table = cells_table(model, self._schema)
        return write_cells(self.run_dir / "cells" / f"cells-{row:06d}.parquet", table)

    def _write_fields(self, model: Any, row: int) -> int:
        self._fields.append(model)  # type: ignore[union-attr]
        return 0  # the store's size is measured when the manifest asks (metadata rewrites)

    def _write_vtk(self, model: Any, row: int) -> int:
        from biohybrid.results.vtk import write_cells_vtu, write_fields_vtu, write_pvd

        vtk = self.run_dir / "vtk"
        nbytes = 0
        if model.tissue is not None or model.couplings:
            name = f"fields-{row:06d}.vtu"
            nbytes += write_fields_vtu(vtk / name, model, self._mesh)
            self._pvd["fields"].append((float(model.t), name))
            write_pvd(vtk / "fields.pvd", self._pvd["fields"])
        name = f"cells-{row:06d}.vtu"
        nbytes += write_cells_vtu(vtk / name, model, self._kinds)
        self._pvd["cells"].append((float(model.t), name))
        write_pvd(vtk / "cells.pvd", self._pvd["cells"])
        return nbytes

    def manifest(self) -> dict[str, Any]:
        """What was written, for the run's manifest: per output its path, interval, times."""
        out: dict[str, Any] = {}
        for key, rec in self.written.items():
            entry = {
                "path": rec["path"],
                "every": rec["every"],
                "n_outputs": len(rec["times"]),
                "last_time": rec["times"][-1] if rec["times"] else None,
                "bytes": rec["bytes"],
            }
            if key == "fields_every" and self._fields is not None and self._fields.n:
                entry["bytes"] = self._fields.nbytes()
            if key == "vtk_every":
                entry["pvd"] = [f"vtk/{k}.pvd" for k, v in self._pvd.items() if v]
                entry["populations"] = list(self._populations)
                entry["kinds"] = list(self._kinds)
            out[key.removesuffix("_every")] = entry
        return out

    def finish(self, model: Any, run_dir: Path, status: str) -> None:
        """Nothing: every output time was written when it was reached."""
