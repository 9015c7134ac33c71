"""Named access to per-cell state: ``y["ca"]`` instead of ``y[:, 0]``.

A :class:`SpeciesIndex` maps names to columns once; calling it on an ``(N, k)`` array gives a
:class:`Named` view whose items are the columns (NumPy views, so writing into them writes
into the array). Models use it in right-hand sides, Jacobians, phenotype maps and
biomarkers, so no code depends on the order in which species were declared::

    IDX = SpeciesIndex(("ca", "h", "ip3"))

    def rhs(t, y, p, u):
        s = IDX(y)
        out = IDX.empty_like(y)
        out["ca"] = ... s["ca"] ...
        return out.array

Jacobian entries are addressed by pairs: ``J[n, IDX.col("ca"), IDX.col("ip3")]``, or
``IDX.jac(J)["ca", "ip3"]``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from biohybrid.errors import UserError, did_you_mean


class SpeciesIndex:
    """Names of the columns of a state (or input) array, looked up once.

    Args:
        names: Column names in order; unique, non-empty.
        what: What the columns are, for error messages (``"species"``, ``"inputs"``).
        owner: Whose columns they are, for error messages (``"system 'li-rinzel'"``).

    Raises:
        UserError: Duplicate or empty names.
    """

    __slots__ = ("_index", "names", "owner", "what")

    def __init__(self, names: Sequence[str], what: str = "species", owner: str = "") -> None:
        names_t = tuple(names)
        if len(set(names_t)) != len(names_t):
            dup = sorted({n for n in names_t if names_t.count(n) > 1})
            raise UserError(f"duplicate {what} names {dup} in {list(names_t)}")
        for n in names_t:
            if not isinstance(n, str) or not n:
                raise UserError(f"{what} names must be non-empty strings, got {n!r}")
        self.names = names_t
        self.what = what
        self.owner = owner
        self._index = {n: i for i, n in enumerate(names_t)}

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def col(self, name: str) -> int:
        """Column of ``name``.

        Raises:
            UserError: ``name`` is not declared; the message lists the declared names.
        """
        try:
            return self._index[name]
        except KeyError:
            of = f" of {self.owner}" if self.owner else ""
            raise UserError(
                f"unknown {self.what} {name!r}{of};{did_you_mean(name, self.names)}"
                f" declared {self.what}: {', '.join(self.names) or '(none)'}"
            ) from None

    def cols(self, names: Sequence[str]) -> list[int]:
        """Columns of several names, in the order given."""
        return [self.col(n) for n in names]

    def __call__(self, array: NDArray[np.float64]) -> Named:
        """A named view of ``array`` (shape ``(N, k)`` or ``(k,)``)."""
        return Named(array, self)

    def empty_like(self, array: NDArray[np.float64]) -> Named:
        """A new uninitialised array of the same shape, as a named view."""
        return Named(np.empty_like(array), self)

    def zeros_like(self, array: NDArray[np.float64]) -> Named:
        """A new zero array of the same shape, as a named view."""
        return Named(np.zeros_like(array), self)

    def vector(self, values: dict[str, float], fill: float | None = None) -> NDArray:
        """A ``(k,)`` array from ``{name: value}``; missing names take ``fill``.

        Raises:
            UserError: An unknown name, or a missing one when ``fill`` is ``None``.
        """
        for name in values:
            self.col(name)
        missing = [n for n in self.names if n not in values]
        if missing and fill is None:
            raise UserError(f"no value for {self.what} {missing}")
        return np.array([values.get(n, fill) for n in self.names], dtype=float)

    def jac(self, J: NDArray[np.float64]) -> NamedJacobian:
        """A named view of a Jacobian of shape ``(N, k, k)``."""
        return NamedJacobian(J, self)


class Named:
    """Columns of an array by name; the last axis is the named one.

    Args:
        array: Shape ``(N, k)`` (one row per cell) or ``(k,)`` (one cell).
        index: The column names.
    """

    __slots__ = ("array", "index")

    def __init__(self, array: NDArray[np.float64], index: SpeciesIndex) -> None:
        if array.shape[-1] != len(index):
            raise UserError(
                f"array has {array.shape[-1]} columns but {len(index)} {index.what} are"
                f" declared ({', '.join(index.names)})"
            )
        self.array = array
        self.index = index

    def __getitem__(self, name: str) -> NDArray[np.float64]:
        return self.array[..., self.index.col(name)]

    def __setitem__(self, name: str, value: ArrayLike) -> None:
        self.array[..., self.index.col(name)] = value

    def __contains__(self, name: object) -> bool:
        return name in self.index

    def keys(self) -> tuple[str, ...]:
        """The names, in column order."""
        return self.index.names

    def __len__(self) -> int:
        return self.array.shape[0] if self.array.ndim > 1 else 1

    def select(self, mask: ArrayLike) -> Named:
        """The rows where ``mask`` holds (a copy), still named."""
        return Named(self.array[np.asarray(mask)], self.index)

    def __repr__(self) -> str:
        return f"Named({', '.join(self.index.names)}; shape={self.array.shape})"


class NamedJacobian:
    """Entries of a batched Jacobian ``(N, k, k)`` by ``(row species, column species)``."""

    __slots__ = ("array", "index")

    def __init__(self, array: NDArray[np.float64], index: SpeciesIndex) -> None:
        self.array = array
        self.index = index

    def __getitem__(self, pair: tuple[str, str]) -> NDArray[np.float64]:
        i, j = pair
        return self.array[:, self.index.col(i), self.index.col(j)]

    def __setitem__(self, pair: tuple[str, str], value: ArrayLike) -> None:
        i, j = pair
        self.array[:, self.index.col(i), self.index.col(j)] = value
