"""The state table: every cell's intracellular state in one ``(capacity, k)`` array.

Rows are the identity that links a Mesa agent to its numbers. A new cell takes a free row
(or the table grows geometrically); a dead cell frees its row, which a later cell may reuse.
Numeric kernels work on the dense block of live rows, gathered with :meth:`StateTable.live`
and written back with :meth:`StateTable.set_rows`, so nothing per cell runs in Python.

Per-row attributes (the grid site of each cell, the integrator's last step size, per-cell
parameters) are stored in :attr:`StateTable.attrs` and follow the rows through growth,
division and death.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray


class StateTable:
    """A structure-of-arrays table of per-cell ODE states with row recycling.

    Args:
        species: Names of the ``k`` state columns, in order.
        capacity: Initial number of rows to allocate.

    Attributes:
        species: The column names.
        attrs: Per-row attribute arrays, each of shape ``(capacity,)``; ``"site"`` (int, the
            flat grid index of the cell, ``-1`` when unplaced) always exists.
    """

    def __init__(self, species: Sequence[str], capacity: int = 64) -> None:
        if len(set(species)) != len(species):
            raise ValueError(f"duplicate species names in {species!r}")
        self.species: tuple[str, ...] = tuple(species)
        self._index = {name: i for i, name in enumerate(self.species)}
        capacity = max(int(capacity), 1)
        self._data = np.zeros((capacity, len(self.species)))
        self._alive = np.zeros(capacity, dtype=bool)
        self.attrs: dict[str, NDArray] = {"site": np.full(capacity, -1, dtype=np.int64)}
        self._attr_fill: dict[str, float] = {"site": -1}
        self._free: list[int] = []
        self._high = 0  # rows [0, _high) have been handed out at least once

    # ------------------------------------------------------------------ structure
    @property
    def k(self) -> int:
        """Number of species (columns)."""
        return len(self.species)

    @property
    def capacity(self) -> int:
        """Number of allocated rows."""
        return self._data.shape[0]

    @property
    def n_alive(self) -> int:
        """Number of live rows."""
        return int(self._alive.sum())

    def column(self, name: str) -> int:
        """Return the column index of species ``name``.

        Raises:
            KeyError: If ``name`` is not a species, listing the valid names.
        """
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"unknown species {name!r}; species are {self.species}") from None

    def add_attr(self, name: str, fill: float = np.nan, dtype: type = float) -> None:
        """Declare a per-row attribute array (e.g. a per-cell parameter or step size).

        Args:
            name: Attribute name.
            fill: Value of rows that have not been set.
            dtype: NumPy dtype of the array.
        """
        if name in self.attrs:
            return
        self.attrs[name] = np.full(self.capacity, fill, dtype=dtype)
        self._attr_fill[name] = fill

    def _grow(self, need: int) -> None:
        new_cap = max(need, 2 * self.capacity)
        data = np.zeros((new_cap, self.k))
        data[: self.capacity] = self._data
        alive = np.zeros(new_cap, dtype=bool)
        alive[: self.capacity] = self._alive
        for name, arr in self.attrs.items():
            grown = np.full(new_cap, self._attr_fill[name], dtype=arr.dtype)
            grown[: self.capacity] = arr
            self.attrs[name] = grown
        self._data, self._alive = data, alive

    # ------------------------------------------------------------------ rows
    def add(self, state: ArrayLike, **attrs: float) -> int:
        """Take a row for a new cell.

        Args:
            state: Initial state, shape ``(k,)``.
            **attrs: Initial values of per-row attributes (e.g. ``site=12``).

        Returns:
            The row index.
        """
        if self._free:
            row = self._free.pop()
        else:
            if self._high >= self.capacity:
                self._grow(self._high + 1)
            row = self._high
            self._high += 1
        self._data[row] = np.asarray(state, dtype=float)
        self._alive[row] = True
        for name, arr in self.attrs.items():
            arr[row] = attrs.pop(name, self._attr_fill[name])
        if attrs:
            raise KeyError(f"unknown row attributes {sorted(attrs)}; known: {sorted(self.attrs)}")
        return row

    def copy_row(self, row: int) -> int:
        """Take a new row holding a copy of ``row`` (state and attributes), for division.

        Args:
            row: The parent's row.

        Returns:
            The daughter's row index.
        """
        self._check(row)
        values = {name: arr[row] for name, arr in self.attrs.items()}
        return self.add(self._data[row].copy(), **values)

    def free(self, row: int) -> None:
        """Release ``row`` (the cell died); it may be reused by a later :meth:`add`."""
        self._check(row)
        self._alive[row] = False
        self._data[row] = np.nan
        for name, arr in self.attrs.items():
            arr[row] = self._attr_fill[name]
        self._free.append(row)

    def _check(self, row: int) -> None:
        if not (0 <= row < self.capacity and self._alive[row]):
            raise IndexError(f"row {row} is not a live row")

    def is_alive(self, row: int) -> bool:
        """Whether ``row`` currently belongs to a live cell."""
        return bool(0 <= row < self.capacity and self._alive[row])

    # ------------------------------------------------------------------ bulk access
    def live_rows(self) -> NDArray[np.int64]:
        """Indices of the live rows, ascending, shape ``(N,)``."""
        return np.flatnonzero(self._alive[: self._high])

    def live(self) -> NDArray[np.float64]:
        """A copy of the live states, shape ``(N, k)``, in :meth:`live_rows` order."""
        return self._data[self.live_rows()]

    def get(self, rows: ArrayLike) -> NDArray[np.float64]:
        """States of ``rows``, shape ``(len(rows), k)``."""
        return self._data[np.asarray(rows, dtype=np.int64)]

    def set_rows(self, rows: ArrayLike, values: ArrayLike) -> None:
        """Write ``values`` (shape ``(len(rows), k)``) into ``rows``."""
        self._data[np.asarray(rows, dtype=np.int64)] = values

    def species_values(self, name: str, rows: ArrayLike | None = None) -> NDArray[np.float64]:
        """One species' values for ``rows`` (default: all live rows), shape ``(N,)``."""
        rows = self.live_rows() if rows is None else np.asarray(rows, dtype=np.int64)
        return self._data[rows, self.column(name)]

    def row(self, row: int) -> NDArray[np.float64]:
        """A writable view of one row's state, shape ``(k,)``."""
        self._check(row)
        return self._data[row]
