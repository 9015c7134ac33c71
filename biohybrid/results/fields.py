"""Field output: every tissue field (and every coupled cell species) as an xarray Dataset.

The store is ``fields.zarr`` in the run folder. Each output time appends one chunk along
``time`` (Zarr writes each chunk as its own file and rewrites only the small metadata), so
a reader (``xarray.open_zarr``) sees every finished output time while the run goes, and a
killed run keeps every chunk written before it. NetCDF was the alternative: appending to a
NetCDF-4/HDF5 file rewrites it in place through one file handle (a kill mid-write can
corrupt the whole file, and HDF5 does not let a reader open a file being written).

Coordinates: ``x`` (and ``y``, ``z``) are the site centres in µm, ``time`` is in the model's
time units. Variables are indexed ``[time, x, y, z]`` (site ``(i, j, k)`` is
``[:, i, j, k]``) and carry CF attributes ``units`` and ``long_name``. A coupled species
(e.g. the calcium of astrocytes under gap-junction coupling) is the variable
``<population>_<species>``, NaN at sites without a cell of that population.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from biohybrid.results.cells import AXES


def coordinates(lattice: Any) -> dict[str, np.ndarray]:
    """Site-centre coordinates in µm per axis, ``{"x": (nx,), ...}``."""
    return {
        AXES[a]: (np.arange(n) + 0.5) * h
        for a, (n, h) in enumerate(zip(lattice.shape, lattice.spacing, strict=True))
    }


def field_arrays(model: Any) -> dict[str, tuple[np.ndarray, dict[str, str]]]:
    """``{variable: (image of the lattice's shape, CF attributes)}`` of ``model`` now."""
    out: dict[str, tuple[np.ndarray, dict[str, str]]] = {}
    lattice = model.lattice
    if model.tissue is not None:
        for name, spec in model.tissue.specs.items():
            attrs = {"units": spec.units, "long_name": spec.description or name}
            out[name] = (model.tissue.image(name), attrs)
    for coupling in model.couplings.values():
        cells = model.cells[coupling.population]
        values = np.full(lattice.n_sites, np.nan)
        rows = cells.rows()
        values[cells.sites(rows)] = cells.species(coupling.species, rows)
        var = f"{coupling.population}_{coupling.species}"
        attrs = {
            "units": _species_units(model, coupling.population, coupling.species),
            "long_name": f"{coupling.species} of {coupling.population} cells (coupled)",
        }
        out[var] = (lattice.image(values), attrs)
    return out


def _species_units(model: Any, population: str, species: str) -> str:
    units = getattr(model.cells[population].system, "units", None) or {}
    return str(units[species]) if species in units else "1"


def fields_dataset(model: Any) -> Any:
    """The fields of ``model`` at its current time as an :class:`xarray.Dataset`.

    Returns:
        A Dataset with one ``time`` and the lattice's axes (see the module docstring).
    """
    import xarray as xr

    lattice = model.lattice
    dims = ("time", *AXES[: lattice.ndim])
    coords: dict[str, Any] = {
        "time": (
            "time",
            np.array([float(model.t)]),
            {"units": model.time_units, "long_name": "model time", "axis": "T"},
        )
    }
    for axis, (name, values) in enumerate(coordinates(lattice).items()):
        coords[name] = (
            name,
            values,
            {
                "units": "µm",
                "long_name": f"{name} position of the site centre",
                "axis": name.upper(),
                "spacing": float(lattice.spacing[axis]),
            },
        )
    arrays = field_arrays(model)
    data = {name: (dims, image[None, ...], attrs) for name, (image, attrs) in arrays.items()}
    attrs = {
        "Conventions": "CF-1.10",
        "title": f"fields of model '{model.name}'",
        "source": "biohybrid",
        "model": model.name,
        "time_units": model.time_units,
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


class FieldStore:
    """Appends one output time after another to a Zarr store (``fields.zarr``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.n = 0
        self._names: list[str] = []

    def append(self, model: Any) -> None:
        """Write the fields now: create the store on the first call, append after.

        The store is made by xarray (dimensions, coordinates, CF attributes); each later
        time grows every array by one along ``time`` and writes one chunk, directly with
        zarr (xarray's own append re-reads and checks the whole store, ~10× slower).
        """
        if self.n == 0:
            ds = fields_dataset(model)
            encoding = {name: {"chunks": ds[name].shape} for name in ds.data_vars}
            ds.to_zarr(self.path, mode="w-", encoding=encoding, consolidated=False)
            self._names = list(ds.data_vars)
        else:
            import zarr

            group = zarr.open_group(self.path, mode="r+")
            arrays = field_arrays(model)
            for name in self._names:
                arr = group[name]
                arr.resize((self.n + 1, *arr.shape[1:]))
                arr[self.n] = arrays[name][0]
            time = group["time"]
            time.resize((self.n + 1,))
            time[self.n] = float(model.t)
        self.n += 1

    def nbytes(self) -> int:
        """Bytes of the store on disk."""
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
