"""Load a run folder for analysis: one call gives biomarkers, summary, manifest, cells, fields."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from biohybrid.errors import UserError


class RunData:
    """A run folder opened for analysis (see :func:`load_run`).

    Attributes:
        path: The run folder.
        manifest: The run's ``manifest.json``.
        biomarkers: ``biomarkers.csv``, indexed by ``time``.
        summary: ``summary.json`` (empty when the model has no summary).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.manifest: dict[str, Any] = _read_json(path / "manifest.json")
        csv = path / "biomarkers.csv"
        self.biomarkers = pd.read_csv(csv, index_col="time") if csv.is_file() else pd.DataFrame()
        summary = path / "summary.json"
        self.summary: dict[str, Any] = _read_json(summary) if summary.is_file() else {}

    @property
    def time_units(self) -> str:
        """The model's time units."""
        return str(self.manifest.get("time_units", ""))

    @property
    def outputs(self) -> dict[str, Any]:
        """What the run wrote besides its biomarkers (``manifest["outputs"]``)."""
        return dict(self.manifest.get("outputs") or {})

    def _folder(self, name: str, setting: str) -> Path:
        path = self.path / name
        if not path.exists():
            raise UserError(
                f"run {self.path} has no {name}: it was run without {setting} (off). Set"
                f" [run] {setting} = <interval> in the scenario (or --set {setting}=...)."
            )
        return path

    def read_cells(
        self, times: list[float] | None = None, columns: list[str] | None = None
    ) -> pd.DataFrame:
        """The per-cell table (every finished output time; readable while the run goes).

        Args:
            times: Only these output times (default: all).
            columns: Only these columns (default: all).

        Returns:
            One row per cell per output time (see :mod:`biohybrid.results.cells`).
        """
        import pyarrow.dataset as pads

        folder = self._folder("cells", "cells_every")
        dataset = pads.dataset(folder, format="parquet")
        flt = pads.field("time").isin(list(times)) if times is not None else None
        table = dataset.to_table(columns=columns, filter=flt)
        df = table.to_pandas()
        if "parent_id" in df:  # null for initial cells: a nullable integer, not a float
            df["parent_id"] = df["parent_id"].astype("Int64")
        keys = [k for k in ("time", "population", "cell_id") if k in df]
        if keys:  # files are read in any order: sort by output time, then cell
            df = df.sort_values(keys, kind="stable")
        return df.reset_index(drop=True)

    @cached_property
    def cells(self) -> pd.DataFrame:
        """The whole per-cell table, read on first use."""
        return self.read_cells()

    @cached_property
    def cell_units(self) -> dict[str, str]:
        """Units of the per-cell table's species columns (from the Parquet metadata)."""
        import pyarrow.parquet as pq

        files = sorted(self._folder("cells", "cells_every").glob("*.parquet"))
        if not files:
            return {}
        meta = pq.read_schema(files[0]).metadata or {}
        return dict(json.loads(meta.get(b"species_units", b"{}").decode("utf-8")))

    @cached_property
    def fields(self) -> Any:
        """The fields as a lazy :class:`xarray.Dataset` (Dask arrays), opened on first use."""
        import xarray as xr

        store = self._folder("fields.zarr", "fields_every")
        return xr.open_zarr(store, consolidated=False, decode_timedelta=False)

    def __repr__(self) -> str:
        return (
            f"RunData({str(self.path)!r}, model={self.manifest.get('model')!r},"
            f" status={self.manifest.get('status')!r}, outputs={sorted(self.outputs)})"
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); is the run folder damaged?") from None


def load_run(path: str | Path) -> RunData:
    """Open a run folder: biomarkers, summary and manifest now, cells and fields lazily.

    Example::

        run = biohybrid.load_run("outputs/demo/20260101T000000Z-s0")
        run.biomarkers.plot()
        cells = run.cells            # pandas, one row per cell per output time
        run.fields["o2"].isel(time=-1).plot()

    Args:
        path: The run folder (the one holding ``manifest.json``).

    Returns:
        The opened run.

    Raises:
        UserError: ``path`` is not a run folder.
    """
    folder = Path(path)
    if not (folder / "manifest.json").is_file():
        what = "does not exist" if not folder.exists() else "has no manifest.json"
        raise UserError(
            f"{folder} is not a run folder: it {what}. A run folder is what `biohybrid run`"
            " writes (outputs/<scenario>/<timestamp>-s<seed>/)."
        )
    return RunData(folder)
