"""The Mesa agent of a biological cell: identity and position; its numbers live in a row."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mesa.discrete_space import Cell, CellAgent

if TYPE_CHECKING:
    from biohybrid.model import HybridModel


class BioCell(CellAgent):
    """A cell agent on the tissue grid holding one row of the model's state table.

    The agent carries identity, position and phenotype label; its intracellular state is
    row :attr:`row` of ``model.table``. Numeric work never runs in :meth:`step`: the engine
    updates all rows at once and agents only act on the resulting flags.

    Args:
        model: The owning hybrid model.
        cell: The grid cell the agent occupies.
        row: Its row in ``model.table``.
        kind: A phenotype label, e.g. ``"normal"`` or ``"cystic"``.

    Attributes:
        row: Index into ``model.table``.
        kind: Phenotype label.
        born: Model time at which the agent was created.
    """

    def __init__(self, model: HybridModel, cell: Cell, row: int, kind: str = "cell") -> None:
        super().__init__(model)
        self.cell = cell
        self.row = row
        self.kind = kind
        self.born = model.t
