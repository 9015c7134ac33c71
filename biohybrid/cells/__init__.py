"""Cell scale: Mesa agents on a discrete-space grid, each holding a state-table row."""
