"""1-D loss curves and Hessian measures at the re-dense minimisers (the paper's Figs. 8 and 43), beside
the sparse-network versions, each labelled; checked against an independent recomputation."""

from __future__ import annotations

from pathlib import Path

import pytest

from sddlab import analyses
from sddlab.analyses.math.directions import filter_normalised_direction
from sddlab.analyses.math.hessian import hessian_trace
from sddlab.analyses.redense import redense_weights, settings
from sddlab.errors import ConfigError
from sddlab.metrics import evaluate
from sddlab.pruning import dense_mask
from sddlab.seeds import torch_stream

REDENSE = {"duration": "1ep"}


@pytest.fixture(scope="module")
def run(tmp_path_factory, small_config, run_config, data_dir) -> analyses.AnalysedRun:
    run_dir: Path = run_config(small_config({"data.subset": 300}), tmp_path_factory.mktemp("minimisers"))
    return analyses.AnalysedRun(run_dir, data_dir, device="cpu")


def redensed_model(run, level):
    weights = redense_weights(run, settings(run, REDENSE["duration"]), level)
    model = run.load_model(weights)
    return model, weights, dense_mask(model, run.setup.prunable)


def test_landscape_around_the_redense_minimiser(run):
    curves = analyses.landscape(run, [3], points=5, at="redense", redense_options=REDENSE, progress=False)
    sparse = analyses.landscape(run, [3], points=5, progress=False)
    assert set(curves.table["at"]) == {"redense"} and set(sparse.table["at"]) == {"sparse"}
    assert "re-dense minimiser" in curves.summary and "sparse network" in sparse.summary
    table = curves.table.set_index(["split", "alpha"])
    model, weights, every = redensed_model(run, 3)
    x, y = run.eval_set("train")
    assert table.loc[("train", 0.0), "loss"] == pytest.approx(evaluate(model, x, y).loss, rel=1e-6)
    # the direction spans every prunable weight: the formerly pruned ones move too
    direction = filter_normalised_direction(model, every, generator=torch_stream(run.seed, "direction", 0))
    moved = {name: weights[name] + 0.5 * direction[name] for name in direction}
    x, y = run.eval_set("test")
    assert table.loc[("test", 0.5), "loss"] == pytest.approx(evaluate(model, x, y, state=moved).loss, rel=1e-6)
    # a different network from the sparse one (re-dense training moved it)
    assert table.loc[("train", 0.0), "loss"] != pytest.approx(
        sparse.table.set_index(["split", "alpha"]).loc[("train", 0.0), "loss"], rel=1e-4)


def test_curvature_at_the_redense_minimiser(run):
    hessian = analyses.curvature(run, [3], subset=100, probes=4, eig_iters=3, at="redense", redense_options=REDENSE,
                                 progress=False)
    row = hessian.table.set_index("level").loc[3]
    assert row["at"] == "redense"
    model, _, every = redensed_model(run, 3)
    x, y = run.eval_set("train", 100)
    trace = hessian_trace(model, every, x, y, probes=4, mode="reverse",
                          generator=torch_stream(run.seed, "curvature", 3, "trace"))
    assert (row["hessian_trace"], row["hessian_trace_se"]) == pytest.approx(trace, rel=1e-9)
    with pytest.raises(ConfigError) as info:
        analyses.curvature(run, [3], at="dense", progress=False)
    assert info.value.field == "at"
