"""Everything the views read from a model, in one place.

The rest of :mod:`biohybrid.viz` never touches a model's internals: it asks these functions
for the lattice, per-site cell values (NaN where no cell), phenotype labels, fields and
units. When the engine's model changes shape (e.g. several cell populations, each with its
own state table), only this module has to follow.

What a model must offer today:

* ``model.lattice``: a :class:`~biohybrid.geometry.Lattice` (1, 2 or 3 axes);
* cells: either ``model.populations`` (a mapping or sequence of objects with a ``table``
  and optionally a ``name``) or a single ``model.table``; each table a
  :class:`~biohybrid.intracellular.state_table.StateTable` with an integer ``site`` attribute;
  a cell's phenotype is ``model.agent_at_row(row).kind`` for the single table, the
  population's name otherwise;
* ``model.tissue`` (or ``None``): ``names``, ``values(name)`` per site and ``specs[name].units``;
* ``model.t``, ``model.time_units``, ``model.system.units`` (optional).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from biohybrid.errors import UserError, list_choices
from biohybrid.geometry import Lattice


def lattice(model: Any) -> Lattice:
    """The model's lattice."""
    return model.lattice


def _populations(model: Any) -> list[tuple[str, Any]]:
    """``[(name, table)]`` of every cell population (``model.cells`` on a HybridModel)."""
    pops = getattr(model, "cells", None)
    if not isinstance(pops, Mapping):
        pops = getattr(model, "populations", None)
    if pops is None or (
        not isinstance(pops, Mapping) and not hasattr(next(iter(pops), None), "table")
    ):
        return [("", model.table)]
    if isinstance(pops, Mapping):
        return [(str(name), p.table) for name, p in pops.items()]
    return [(str(getattr(p, "name", "")), p.table) for p in pops]


def species(model: Any) -> list[str]:
    """Names of the intracellular species over all populations, first seen first."""
    names: dict[str, None] = {}
    for _, table in _populations(model):
        names.update(dict.fromkeys(table.species))
    return list(names)


def cell_values(model: Any, name: str) -> NDArray[np.float64]:
    """One species as a per-site array, NaN where no cell carries it.

    Args:
        model: The model.
        name: A species of at least one population.

    Returns:
        Shape ``(lattice.n_sites,)``.

    Raises:
        UserError: If no population has the species.
    """
    out = np.full(lattice(model).n_sites, np.nan)
    found = False
    for _, table in _populations(model):
        if name not in table.species:
            continue
        found = True
        rows = table.live_rows()
        out[table.attrs["site"][rows].astype(np.int64)] = table.species_values(name, rows)
    if not found:
        raise UserError(f"unknown species {name!r}; species are: {list_choices(species(model))}.")
    return out


def cell_states(model: Any) -> dict[str, NDArray[np.float64]]:
    """Every species as a per-site array (see :func:`cell_values`), in one pass per table."""
    n = lattice(model).n_sites
    out: dict[str, NDArray[np.float64]] = {s: np.full(n, np.nan) for s in species(model)}
    for _, table in _populations(model):
        rows = table.live_rows()
        sites = table.attrs["site"][rows].astype(np.int64)
        y = table.get(rows)
        for c, name in enumerate(table.species):
            out[name][sites] = y[:, c]
    return out


def cell_kinds(model: Any, kind_names: list[str]) -> NDArray[np.int64]:
    """Phenotype code per site, ``-1`` where empty.

    Args:
        model: The model.
        kind_names: Known labels; new ones are appended in place, so codes stay stable.

    Returns:
        Shape ``(lattice.n_sites,)``; codes index ``kind_names``.
    """
    out = np.full(lattice(model).n_sites, -1, dtype=np.int64)
    index = {k: i for i, k in enumerate(kind_names)}
    pops = _populations(model)
    for pop, table in pops:
        rows = table.live_rows()
        if not rows.size:
            continue
        if len(pops) == 1 and hasattr(model, "agent_at_row"):
            labels = [model.agent_at_row(int(r)).kind for r in rows]
        else:
            labels = [pop or "cell"] * rows.size
        for label in dict.fromkeys(labels):
            if label not in index:
                index[label] = len(kind_names)
                kind_names.append(label)
        out[table.attrs["site"][rows].astype(np.int64)] = [index[k] for k in labels]
    return out


def n_cells(model: Any) -> int:
    """Number of live cells over all populations."""
    return int(sum(table.live_rows().size for _, table in _populations(model)))


def field_names(model: Any) -> list[str]:
    """The tissue fields, in declaration order (none without a tissue)."""
    tissue = getattr(model, "tissue", None)
    return list(tissue.names) if tissue is not None else []


def field_values(model: Any, name: str) -> NDArray[np.float64]:
    """One field per site, shape ``(lattice.n_sites,)``."""
    return np.asarray(model.tissue.values(name), dtype=float)


def units(model: Any) -> dict[str, str]:
    """``{species or field: units}``."""
    out = dict(getattr(getattr(model, "system", None), "units", {}) or {})
    tissue = getattr(model, "tissue", None)
    if tissue is not None:
        out.update({n: s.units for n, s in tissue.specs.items()})
    return out


def n_outputs(model: Any) -> int:
    """Number of output steps (biomarker rows) the model has recorded."""
    return len(model.recorder.times)


def display_point(model: Any) -> tuple[int, ...]:
    """The site the 3-D views slice through: ``model.display_point`` if set, else the centre."""
    shape = lattice(model).shape
    point = getattr(model, "display_point", None)
    if point is None:
        return tuple(n // 2 for n in shape)
    point = tuple(int(p) for p in point)
    if len(point) != len(shape) or any(not 0 <= p < n for p, n in zip(point, shape, strict=True)):
        raise UserError(f"display_point {point} is outside the lattice of shape {list(shape)}.")
    return point
