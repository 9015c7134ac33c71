"""The same sweep on a Dask LocalCluster equals the local process pool, row for row."""

from __future__ import annotations

import pandas as pd
import pytest

from biohybrid.sweep import sweep
from biohybrid.sweep.execute import TIMING_COLUMNS

distributed = pytest.importorskip("distributed")

TINY = {"t_end": 60.0, "nx": 12, "ny": 12, "seed_radius": 2.0}


@pytest.mark.slow
def test_dask_local_cluster_matches_local_pool(tmp_path):
    params = {"s_max": [0.1, 1.0], "k_up": [0.02, 0.08]}
    kwargs = dict(replicates=2, seed=21, overrides=TINY)
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        # by address, as from the command line
        on_dask = sweep(
            "demo", params, scheduler=cluster.scheduler_address, out=tmp_path / "dask", **kwargs
        )
        # a partly done sweep resumed with a Client object skips what is done
        resumed = sweep("demo", params, scheduler=client, out=tmp_path / "dask", **kwargs)
    local = sweep("demo", params, workers=2, out=tmp_path / "pool", **kwargs)
    assert len(on_dask) == 8 and (on_dask["status"] == "completed").all()
    assert resumed.attrs["sweep"]["n_skipped"] == 8
    drop = list(TIMING_COLUMNS)
    pd.testing.assert_frame_equal(
        on_dask.drop(columns=drop).reset_index(drop=True),
        local.drop(columns=drop).reset_index(drop=True),
    )
    assert (tmp_path / "dask" / "runs" / "run-00007" / "manifest.json").exists()
