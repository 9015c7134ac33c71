"""ParaView output: VTK unstructured grids (``.vtu``, written with meshio) and ``.pvd`` indexes.

``vtk/fields-<row>.vtu`` holds the lattice as finite-volume cells (lines in 1-D, quads in
2-D, hexahedra in 3-D; cell ``s`` is site ``s``) with every field as cell data.
``vtk/cells-<row>.vtu`` holds the live cells as points at their site centres (µm; a 1-D or
2-D lattice lies in the plane ``y = 0`` / ``z = 0``) with their species, ``cell_id``,
``parent_id`` (-1 for none), ``population`` and ``kind`` (indexes into the lists in the
manifest) as point data. ``vtk/fields.pvd`` and ``vtk/cells.pvd`` index the files by model
time; ParaView opens a ``.pvd`` as a time series. Both indexes are rewritten atomically after
every file, so they are whole at any moment of the run.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from biohybrid.io import atomic_write_text

#: meshio cell type of a lattice site per dimension.
CELL_TYPES: dict[int, str] = {1: "line", 2: "quad", 3: "hexahedron"}

#: Corner offsets of one site, in VTK's vertex order for each cell type.
_CORNERS: dict[int, list[tuple[int, ...]]] = {
    1: [(0,), (1,)],
    2: [(0, 0), (1, 0), (1, 1), (0, 1)],
    3: [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)],
}


def lattice_mesh(lattice: Any) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """Points (µm, shape ``(P, 3)``) and cells of a lattice, cell ``s`` = site ``s``."""
    shape = np.asarray(lattice.shape)
    ndim = lattice.ndim
    vshape = tuple(int(n) + 1 for n in shape)
    grids = np.meshgrid(*(np.arange(n) for n in vshape), indexing="ij")
    vcoords = np.stack([g.reshape(-1, order="F") for g in grids], axis=1)
    points = np.zeros((vcoords.shape[0], 3))
    points[:, :ndim] = vcoords * np.asarray(lattice.spacing)
    site_coords = lattice.coordinates(np.arange(lattice.n_sites))
    corners = [
        np.ravel_multi_index(tuple((site_coords + np.asarray(c)).T), vshape, order="F")
        for c in _CORNERS[ndim]
    ]
    return points, [(CELL_TYPES[ndim], np.stack(corners, axis=1).astype(np.int64))]


def _write_vtu(path: Path, mesh: Any) -> int:
    """Write a meshio mesh as binary, zlib-compressed ``.vtu`` atomically; return its bytes."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if len(mesh.points):
            mesh.write(tmp, file_format="vtu", binary=True, compression="zlib")
        else:  # meshio neither writes nor reads a grid without points: write it by hand
            Path(tmp).write_text(_empty_vtu(mesh.point_data), encoding="utf-8")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path.stat().st_size


def _empty_vtu(point_data: dict[str, np.ndarray]) -> str:
    """A valid ``.vtu`` without points or cells (no cell alive), with the usual arrays."""
    arrays = "".join(
        f'        <DataArray type="{"Float64" if v.dtype.kind == "f" else "Int64"}"'
        f' Name={quoteattr(k)} format="ascii"></DataArray>\n'
        for k, v in point_data.items()
    )
    return (
        '<?xml version="1.0"?>\n'
        '<VTKFile type="UnstructuredGrid" version="0.1" byte_order="LittleEndian">\n'
        "  <UnstructuredGrid>\n"
        '    <Piece NumberOfPoints="0" NumberOfCells="0">\n'
        '      <Points><DataArray type="Float64" NumberOfComponents="3" format="ascii">'
        "</DataArray></Points>\n"
        '      <Cells><DataArray type="Int64" Name="connectivity" format="ascii"></DataArray>'
        '<DataArray type="Int64" Name="offsets" format="ascii"></DataArray>'
        '<DataArray type="UInt8" Name="types" format="ascii"></DataArray></Cells>\n'
        f"      <PointData>\n{arrays}      </PointData>\n"
        "    </Piece>\n"
        "  </UnstructuredGrid>\n"
        "</VTKFile>\n"
    )


def write_fields_vtu(path: Path, model: Any, mesh: tuple[np.ndarray, list] | None = None) -> int:
    """Every field of ``model`` now as cell data of the lattice grid; return the bytes."""
    import meshio

    from biohybrid.results.fields import field_arrays

    points, cells = lattice_mesh(model.lattice) if mesh is None else mesh
    data = {
        name: [model.lattice.flatten(image).astype(np.float64)]
        for name, (image, _) in field_arrays(model).items()
    }
    return _write_vtu(path, meshio.Mesh(points, cells, cell_data=data))


def write_cells_vtu(path: Path, model: Any, kinds: list[str]) -> int:
    """The live cells of ``model`` as points with point data; return the bytes.

    Args:
        path: The ``.vtu`` file.
        model: The model.
        kinds: Phenotype labels seen so far; new ones are appended (``kind`` is an index).
    """
    import meshio

    from biohybrid.results.cells import species_columns

    species = species_columns(model)
    ndim = model.lattice.ndim
    pos, data = [], {k: [] for k in ("cell_id", "parent_id", "population", "kind", *species)}
    for p, cells in enumerate(model.cells.values()):
        rows = cells.rows()
        agents = [model.agent_at_row(int(r), cells.name) for r in rows]
        pos.append(model.lattice.positions(cells.sites(rows)).reshape(rows.size, ndim))
        data["cell_id"].append([a.unique_id for a in agents])
        data["parent_id"].append([_or(getattr(a, "parent_id", None), -1) for a in agents])
        data["population"].append(np.full(rows.size, p))
        for a in agents:
            if str(a.kind) not in kinds:
                kinds.append(str(a.kind))
        data["kind"].append([kinds.index(str(a.kind)) for a in agents])
        y = cells.table.get(rows)
        own = list(cells.system.species)
        for s in species:
            data[s].append(y[:, own.index(s)] if s in own else np.full(rows.size, np.nan))
    xyz = np.concatenate(pos) if pos else np.zeros((0, ndim))
    points = np.zeros((xyz.shape[0], 3))
    points[:, : xyz.shape[1]] = xyz
    point_data = {}
    for name, chunks in data.items():
        flat = list(itertools.chain.from_iterable(np.asarray(c).tolist() for c in chunks))
        dtype = np.float64 if name in species else np.int64
        point_data[name] = np.asarray(flat, dtype=dtype)
    vertices = [("vertex", np.arange(points.shape[0], dtype=np.int64)[:, None])]
    return _write_vtu(path, meshio.Mesh(points, vertices, point_data=point_data))


def _or(value: Any, default: int) -> int:
    return default if value is None else int(value)


def write_pvd(path: Path, entries: list[tuple[float, str]]) -> None:
    """A ParaView collection indexing ``(time, file relative to path)`` entries, atomically."""
    lines = [
        '<?xml version="1.0"?>',
        '<VTKFile type="Collection" version="0.1" byte_order="LittleEndian">',
        "  <Collection>",
        *(
            f'    <DataSet timestep="{t!r}" group="" part="0" file={quoteattr(f)}/>'
            for t, f in entries
        ),
        "  </Collection>",
        "</VTKFile>",
    ]
    atomic_write_text(path, "\n".join(lines) + "\n")
