"""The state table: rows are taken, copied, freed and reused; attributes follow rows."""

from __future__ import annotations

import numpy as np
import pytest

from biohybrid.intracellular import StateTable


def test_rows_grow_free_and_reuse() -> None:
    t = StateTable(("a", "b"), capacity=2)
    rows = [t.add([i, 10 * i], site=i) for i in range(5)]
    assert rows == [0, 1, 2, 3, 4]
    assert t.capacity >= 5
    np.testing.assert_array_equal(t.live(), [[i, 10 * i] for i in range(5)])
    t.free(2)
    assert t.n_alive == 4
    assert not t.is_alive(2)
    assert t.attrs["site"][2] == -1
    new = t.add([7, 70], site=9)
    assert new == 2  # the freed row is reused
    np.testing.assert_array_equal(t.row(2), [7, 70])
    with pytest.raises(IndexError):
        t.free(17)


def test_copy_row_copies_state_and_attributes() -> None:
    t = StateTable(("ca",))
    t.add_attr("ode_h", fill=np.nan)
    r = t.add([0.3], site=4, ode_h=0.01)
    d = t.copy_row(r)
    assert d != r
    assert t.row(d)[0] == 0.3
    assert t.attrs["ode_h"][d] == 0.01
    assert t.attrs["site"][d] == 4
    t.row(d)[0] = 0.9  # a copy, not a view of the parent
    assert t.row(r)[0] == 0.3


def test_unknown_species_lists_valid_ones() -> None:
    t = StateTable(("ca", "h"))
    with pytest.raises(KeyError, match="ca"):
        t.column("cAMP")
