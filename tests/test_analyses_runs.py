"""The run-directory analyses (sddlab.analyses): re-init, re-dense, interpolation, distances, caching."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

import sddlab.training
from sddlab import analyses
from sddlab.analyses.redense import final_lr
from sddlab.errors import SddError
from sddlab.metrics import learning_distance
from sddlab.models import build_model
from sddlab.seeds import stream_seed
from sddlab.store import RunStore

DURATION = "1ep"  # re-dense length in these tests


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, small_config, run_config) -> Path:
    """A finished tiny run (levels 0..3) of this module's own: the analyses write into it."""
    return run_config(small_config({"data.subset": 300}), tmp_path_factory.mktemp("analyses"))


@pytest.fixture(scope="module")
def run(run_dir, data_dir) -> analyses.AnalysedRun:
    return analyses.AnalysedRun(run_dir, data_dir, device="cpu")


@pytest.fixture
def spy(monkeypatch):
    """Record every call of the one training loop (through the module attribute the analyses use)."""
    calls: list[dict[str, Any]] = []
    original = sddlab.training.train

    def record(model, mask, data, training, optimizer, schedule, **kwargs):
        calls.append({**kwargs, "schedule": schedule, "training": training,
                      "entry": {k: v.detach().clone() for k, v in model.state_dict().items()},
                      "mask": {k: v.clone() for k, v in mask.items()}})
        return original(model, mask, data, training, optimizer, schedule, **kwargs)

    monkeypatch.setattr(sddlab.training, "train", record)
    return calls


def test_distance_variants_equal_recomputation_from_checkpoints(run, run_dir):
    result = analyses.distance(run, progress=False)
    network = result.extra["wide"].set_index("level")
    store = RunStore(run_dir)
    init = store.load_checkpoint("init")
    records = {r["level"]: r for r in store.records()}
    assert sorted(network.index) == [0, 1, 2, 3]
    for level in range(4):
        mask, weights = RunStore(run_dir).load_level_state(level)
        row, remaining = network.loc[level], sum(int(m.sum()) for m in mask.values())
        paper = learning_distance(init, weights, mask, from_pruned_as_zero=True)
        assert row["distance_init"] == pytest.approx(paper, rel=1e-9)
        assert row["distance_init"] == pytest.approx(records[level]["learning_distance"], rel=1e-6)
        unpruned = learning_distance(init, weights, mask, from_pruned_as_zero=False)
        assert row["distance_init_unpruned"] == pytest.approx(unpruned, rel=1e-9)
        assert row["distance_rewind"] == pytest.approx(records[level]["learning_distance_rewind"], rel=1e-6)
        assert row["distance_rewind_normalised"] == pytest.approx(row["distance_rewind"] / math.sqrt(remaining))
        layers = result.table[(result.table["level"] == level) & (result.table["variant"] == "distance_init")
                              & (result.table["layer"] != "all")]
        assert set(layers["layer"]) == set(mask)
        assert math.sqrt((layers["distance"] ** 2).sum()) == pytest.approx(paper, rel=1e-9)


def test_reinit_trains_the_mask_from_an_independent_fresh_init(run, run_dir, spy):
    result = analyses.tickets(run, [2], oneshot=False, progress=False)
    assert len(spy) == 1
    call = spy[0]
    mask, _ = RunStore(run_dir).load_level_state(2)
    init = RunStore(run_dir).load_checkpoint("init")
    assert call["mask"].keys() == mask.keys()
    assert all(torch.equal(call["mask"][n], mask[n]) for n in mask)
    fresh = build_model(run.config.model, (64,), 10, stream_seed(run.seed, "reinit", 2)).state_dict()
    for name, keep in mask.items():
        entry = call["entry"][name]
        assert (entry[~keep] == 0).all(), "pruned weights start at zero"
        assert torch.equal(entry[keep], fresh[name][keep]), "the fresh init of stream ('reinit', level)"
        assert not torch.equal(entry[keep], init[name][keep]), "not the original init"
    start, end, schedule, _ = run.experiment.level_plan(2)
    assert (call["start"], call["end"]) == (start, end) and call["schedule"] == schedule
    weights = analyses.AnalysisCache(run_dir, "tickets", {"version": 1}).load_weights("level_02")
    assert all((weights[n][~keep] == 0).all() for n, keep in mask.items())
    assert set(result.table["variant"]) == {"ticket", "reinit"}
    ticket = result.table[result.table["variant"] == "ticket"].iloc[0]
    assert ticket["test_acc"] == RunStore(run_dir).records()[2]["test_acc"]


def test_redense_starts_from_the_sparse_weights_with_every_weight_trainable(run, run_dir, spy):
    result = analyses.redense(run, [2], duration=DURATION, progress=False)
    (call,) = spy
    mask, weights = RunStore(run_dir).load_level_state(2)
    assert all(torch.equal(call["entry"][n], weights[n]) for n in weights)
    assert call["mask"].keys() == mask.keys() and all(m.all() for m in call["mask"].values())
    lr = final_lr(run.config.training, run.plan.per_epoch)
    assert call["training"].lr == lr and call["schedule"](0) == lr == call["schedule"](call["end"] - 1)
    assert (call["start"], call["end"]) == (0, run.plan.per_epoch)
    trained = analyses.AnalysisCache(result.directory.parent.parent, "redense", result.extra["settings"].options())
    redensed = trained.load_weights("level_02")
    assert any((redensed[n][~keep] != 0).any() for n, keep in mask.items()), "pruned weights grow back"
    rows = result.table.set_index("model")
    assert rows.loc["sparse", "test_acc"] == pytest.approx(RunStore(run_dir).records()[2]["test_acc"])
    assert rows.loc["redense", "regrown"] > 0


def test_interpolation_endpoints_are_the_two_models_own_metrics(run, spy):
    dense = analyses.redense(run, [2], duration=DURATION, progress=False)  # cached by the test above or now
    spy.clear()
    result = analyses.interpolation(run, [2], duration=DURATION, alphas=[0.0, 0.5, 1.0], progress=False)
    assert spy == [], "the re-dense weights are read back, not trained again"
    metrics = dense.table.set_index("model")
    path = result.table.set_index(["split", "alpha"])
    for alpha, model in ((0.0, "sparse"), (1.0, "redense")):
        assert path.loc[("test", alpha), "loss"] == pytest.approx(metrics.loc[model, "test_loss"], rel=1e-5)
        assert path.loc[("test", alpha), "acc"] == metrics.loc[model, "test_acc"]
        assert path.loc[("train", alpha), "loss"] == pytest.approx(metrics.loc[model, "train_loss"], rel=1e-5)
        assert path.loc[("train", alpha), "acc"] == metrics.loc[model, "train_acc_noisy"]
    barrier = result.extra["barriers"].set_index("split").loc["train"]
    train = path.xs("train")["loss"]
    expected = train.max() - (train.loc[0.0] + train.loc[1.0]) / 2
    assert barrier["barrier"] == pytest.approx(expected)


def test_second_call_reads_the_cache_and_new_levels_resume(run, run_dir, spy, monkeypatch):
    first = analyses.tickets(run, [1], oneshot=False, progress=False)
    weights = first.directory / "weights" / "level_01.safetensors"
    stamp = weights.stat().st_mtime_ns
    spy.clear()
    again = analyses.tickets(run, [1, 3], oneshot=False, progress=False)
    assert [call["stream"] for call in spy] == ["level_03"], "only the new level is trained"
    assert weights.stat().st_mtime_ns == stamp

    def refuse(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(sddlab.training, "train", refuse)
    third = analyses.tickets(run, [1, 3], oneshot=False, progress=False)
    pd.testing.assert_frame_equal(again.table, third.table)
    analyses.redense(run, [2], duration=DURATION, progress=False)
    assert (third.directory / "options.json").exists()
    assert {1, 3} <= set(pd.read_parquet(third.directory / "table.parquet")["level"])  # every finished item


def test_oneshot_variant_is_a_run_of_its_own_next_to_the_original(run, run_dir):
    result = analyses.tickets(run, oneshot=True, progress=False)
    table = result.table.set_index(["variant", "level"])
    assert set(result.table["variant"]) == {"ticket", "reinit", "oneshot"}
    assert table.loc[("oneshot", 0), "test_acc"] == table.loc[("ticket", 0), "test_acc"]  # same dense level
    for level in (1, 2, 3):
        assert table.loc[("oneshot", level), "sparsity"] == pytest.approx(1 - 0.8**level, abs=2e-3)
    oneshot_dirs = [p for p in run_dir.parent.iterdir() if p.name.startswith(f"{run.config.name}-oneshot-")]
    assert len(oneshot_dirs) == 1
    assert RunStore(oneshot_dirs[0]).config().pruning.strategy == "oneshot"
    assert "re-init" in result.summary and list(result.display.columns[:2]) == ["level", "sparsity"]


def test_landscape_and_curvature_measure_the_sparse_network(run):
    curves = analyses.landscape(run, [3], points=5, progress=False)
    assert set(curves.table["split"]) == {"train", "test"} and len(curves.table) == 10
    at_zero = curves.table[(curves.table["alpha"] == 0.0) & (curves.table["split"] == "test")].iloc[0]
    assert at_zero["loss"] == pytest.approx(run.record(3)["test_loss"], rel=1e-5)
    assert curves.extra["sharpness"]["rise"].notna().all()
    hessian = analyses.curvature(run, [0, 3], subset=100, probes=4, eig_iters=5, progress=False)
    assert list(hessian.table["level"]) == [0, 3]
    assert (hessian.table["hessian_trace"] > 0).all() and (hessian.table["top_eigenvalue"] > 0).all()


def test_unfinished_or_unknown_levels_and_missing_runs_fail_with_one_line(run_dir, tmp_path):
    partial = tmp_path / run_dir.name
    shutil.copytree(run_dir, partial, ignore=shutil.ignore_patterns("analysis"))
    (partial / "levels" / "level_03.json").unlink()
    with pytest.raises(SddError, match="level 3 of .* is not finished yet"):
        analyses.distance(partial, [3], progress=False)
    with pytest.raises(SddError, match="level 9 is not a level"):
        analyses.redense(partial, [9], progress=False)
    with pytest.raises(SddError, match="does not exist"):
        analyses.tickets(tmp_path / "nowhere", progress=False)
    assert list(analyses.distance(partial, progress=False).table["level"].unique()) == [0, 1, 2]
