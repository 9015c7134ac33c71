"""Cell scale: Mesa agents on a discrete-space grid, each holding a state-table row."""

from biohybrid.cells.agent import BioCell

__all__ = ["BioCell"]
