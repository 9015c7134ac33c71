"""Per-cell output: one long-format table row per live cell per output time, as Parquet.

Every output time is one file ``cells/cells-<row>.parquet`` (``<row>`` is the biomarker row,
``t / dt_output``), written atomically, so ``pandas.read_parquet(run_dir / "cells")`` reads
every finished output time while the run is still going. All files of a run share one
schema:

========== ============================================================================
column     meaning
========== ============================================================================
time       model time, in the model's time units
cell_id    the agent's Mesa ``unique_id``: stable for the cell's life, never reused
population the cell's population
kind       its phenotype label (``agent.kind``)
parent_id  ``cell_id`` of the cell it divided from (lineage); null for initial cells
site       flat lattice site (first axis fastest)
x_um, ...  position of the site centre, µm (``x_um``, ``y_um``, ``z_um``: the lattice's axes)
<species>  every named species of every population (null where a population lacks it); a
           species named like one of the columns above gets the suffix ``_species``
========== ============================================================================

The schema's metadata holds ``time_units``, ``position_units`` and ``species_units`` (JSON,
``{column: units}`` from the systems' declarations).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from biohybrid.io import atomic_write_bytes

#: Names of the lattice axes (coordinates of the fields).
AXES: tuple[str, ...] = ("x", "y", "z")

#: Names of the position columns of the per-cell table, per lattice axis.
POSITIONS: tuple[str, ...] = ("x_um", "y_um", "z_um")

#: The columns before the species.
FIXED: tuple[str, ...] = ("time", "cell_id", "population", "kind", "parent_id", "site", *POSITIONS)

_CATEGORY = pa.dictionary(pa.int32(), pa.string())


def species_columns(model: Any) -> list[str]:
    """The union of every population's species, in declaration order (no duplicates)."""
    out: list[str] = []
    for cells in model.cells.values():
        out.extend(s for s in cells.system.species if s not in out)
    return out


def column_of(species: str) -> str:
    """The per-cell table's column of a species."""
    return f"{species}_species" if species in FIXED else species


def cells_schema(model: Any) -> pa.Schema:
    """The Arrow schema of a model's per-cell table (fixed for the run)."""
    fields = [
        pa.field("time", pa.float64()),
        pa.field("cell_id", pa.int64()),
        pa.field("population", _CATEGORY),
        pa.field("kind", _CATEGORY),
        pa.field("parent_id", pa.int64()),
        pa.field("site", pa.int64()),
        *(pa.field(a, pa.float64()) for a in POSITIONS[: model.lattice.ndim]),
        *(pa.field(column_of(s), pa.float64()) for s in species_columns(model)),
    ]
    units: dict[str, str] = {}
    for cells in model.cells.values():
        for s, u in (getattr(cells.system, "units", None) or {}).items():
            units.setdefault(column_of(s), str(u))
    meta = {
        "time_units": model.time_units,
        "position_units": "µm",
        "model": model.name,
        "species_units": json.dumps(units, ensure_ascii=False),
    }
    return pa.schema(fields, metadata=meta)


def cells_table(model: Any, schema: pa.Schema | None = None) -> pa.Table:
    """Every live cell of ``model`` now, one row each, populations in declaration order.

    Args:
        model: A :class:`~biohybrid.model.HybridModel`.
        schema: The run's schema (default: :func:`cells_schema`).

    Returns:
        An Arrow table with the columns described in the module docstring.
    """
    schema = cells_schema(model) if schema is None else schema
    species = species_columns(model)
    ndim = model.lattice.ndim
    parts: dict[str, list[Any]] = {name: [] for name in schema.names}
    for cells in model.cells.values():
        rows = cells.rows()
        n = rows.size
        agents = [model.agent_at_row(int(r), cells.name) for r in rows]
        sites = cells.sites(rows)
        pos = model.lattice.positions(sites) if n else np.zeros((0, ndim))
        y = cells.table.get(rows)
        parts["time"].append(np.full(n, float(model.t)))
        parts["cell_id"].append(np.fromiter((a.unique_id for a in agents), np.int64, n))
        parts["population"].append(np.full(n, cells.name, dtype=object))
        parts["kind"].append(np.array([str(a.kind) for a in agents], dtype=object))
        parents = [getattr(a, "parent_id", None) for a in agents]
        parts["parent_id"].append(pa.array(parents, pa.int64()))
        parts["site"].append(np.asarray(sites, dtype=np.int64))
        for axis in range(ndim):
            parts[POSITIONS[axis]].append(pos[:, axis])
        own = list(cells.system.species)
        for s in species:
            col = y[:, own.index(s)] if s in own else pa.nulls(n, pa.float64())
            parts[column_of(s)].append(col)
    arrays = []
    for field in schema:
        chunks = [pa.array(c, type=field.type) for c in parts[field.name]]
        if pa.types.is_dictionary(field.type):
            plain = [pa.array(c, type=pa.string()) for c in parts[field.name]]
            merged = pa.concat_arrays(plain) if plain else pa.array([], pa.string())
            arrays.append(merged.dictionary_encode().cast(field.type))
        else:
            arrays.append(pa.concat_arrays(chunks) if chunks else pa.array([], type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def write_cells(path: Path, table: pa.Table) -> int:
    """Write one output time's table to ``path`` atomically (zstd); return its bytes."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    data = sink.getvalue().to_pybytes()
    atomic_write_bytes(path, data)
    return len(data)
