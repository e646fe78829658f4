"""The run-directory analyses (sddlab.analyses): re-init, re-dense, interpolation, distances, caching.

Trained analyses are checked against an independent recomputation: a freshly prepared setup, the model
loaded by hand, the one training loop called directly and `sddlab.metrics.measure`; on the CPU both
are the same arithmetic, so accuracies, losses and weights agree exactly.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import sddlab.analyses.levels as levels_module
from sddlab import analyses
from sddlab.analyses.flatness import landmarks
from sddlab.analyses.math.directions import filter_normalised_direction
from sddlab.analyses.math.hessian import hessian_trace, top_eigenvalue
from sddlab.analyses.redense import final_lr
from sddlab.duration import Duration
from sddlab.errors import SddError
from sddlab.metrics import evaluate, learning_distance, measure
from sddlab.models import build_model
from sddlab.phases import Landmark, PhaseReport
from sddlab.preparation import level_span, prepare
from sddlab.pruning import apply_mask, dense_mask
from sddlab.seeds import stream_seed, torch_stream
from sddlab.store import RunStore
from sddlab.training import Schedule, Span, make_optimizer, train

DURATION = "1ep"  # re-dense length in these tests
METRICS = ["test_acc", "test_loss", "train_acc_noisy", "train_acc_clean", "train_loss", "memorized"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, small_config, run_config) -> Path:
    """A finished tiny run (levels 0..3) of this module's own: the analyses write into it."""
    return run_config(small_config({"data.subset": 300}), tmp_path_factory.mktemp("analyses"))


@pytest.fixture(scope="module")
def run(run_dir, data_dir) -> analyses.AnalysedRun:
    return analyses.AnalysedRun(run_dir, data_dir, device="cpu")


@pytest.fixture
def spy(monkeypatch):
    """Record every call of the one training loop made through `AnalysedRun.train`."""
    calls: list[dict[str, Any]] = []
    original = levels_module.train

    def record(model, mask, data, span, optimizer, *args, **kwargs):
        calls.append({"span": span, "entry": {k: v.detach().clone() for k, v in model.state_dict().items()},
                      "mask": {k: v.clone() for k, v in mask.items()}})
        return original(model, mask, data, span, optimizer, *args, **kwargs)

    monkeypatch.setattr(levels_module, "train", record)
    return calls


def trained(config, data_dir, weights, mask, span_of) -> tuple[torch.nn.Module, dict[str, float], dict[str, float]]:
    """Independently: a fresh setup's model holding `weights` under `mask`, trained over `span_of(setup)`
    by the loop itself; returns (model, metrics before, metrics after)."""
    setup = prepare(config, data_dir)
    model = setup.model
    model.load_state_dict(weights)
    apply_mask(model, mask)
    before = measure(model, setup.data)
    span = span_of(setup)
    train(model, mask, setup.data, span, make_optimizer(model, span.training), setup.runtime)
    return model, before, measure(model, setup.data)


def assert_metrics(row: pd.Series, expected: dict[str, float]) -> None:
    expected = {key: expected[key] for key in METRICS}  # measure() also returns calibration fields
    assert row[METRICS].to_dict() == pytest.approx(expected, rel=0, abs=0, nan_ok=True)


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
        assert (row["sparsity"], row["test_acc"]) == (records[level]["sparsity"], records[level]["test_acc"])
        paper = learning_distance(init, weights, mask, from_pruned_as_zero=True)
        assert row["distance_init"] == pytest.approx(paper, rel=1e-9)
        assert row["distance_init"] == pytest.approx(records[level]["learning_distance"], rel=1e-6)
        unpruned = learning_distance(init, weights, mask, from_pruned_as_zero=False)
        assert row["distance_init_unpruned"] == pytest.approx(unpruned, rel=1e-9)
        assert row["distance_rewind"] == pytest.approx(records[level]["learning_distance_rewind"], rel=1e-6)
        assert row["distance_rewind_normalised"] == pytest.approx(row["distance_rewind"] / math.sqrt(remaining))
        layers = result.table[(result.table["level"] == level) & (result.table["variant"] == "distance_init")
                              & (result.table["layer"] != "all")]
        assert list(layers["layer"]) == list(mask)
        assert list(layers["remaining"]) == [int(keep.sum()) for keep in mask.values()]
        assert math.sqrt((layers["distance"] ** 2).sum()) == pytest.approx(paper, rel=1e-9)


def test_reinit_trains_the_mask_from_an_independent_fresh_init(run, run_dir, data_dir, spy):
    result = analyses.tickets(run, [2], oneshot=False, progress=False)
    (call,) = spy
    mask, _ = RunStore(run_dir).load_level_state(2)
    init = RunStore(run_dir).load_checkpoint("init")
    assert list(call["mask"]) == list(mask) and all(torch.equal(call["mask"][n], mask[n]) for n in mask)
    fresh = build_model(run.config.model, (64,), 10, stream_seed(run.seed, "reinit", 2)).state_dict()
    for name, keep in mask.items():
        entry = call["entry"][name]
        assert (entry[~keep] == 0).all(), "pruned weights start at zero"
        assert torch.equal(entry[keep], fresh[name][keep]), "the fresh init of stream ('reinit', level)"
        assert not torch.equal(entry[keep], init[name][keep]), "not the original init"
    assert call["span"] == run.level_span(2), "the ticket's window, schedule, data order and augmentation"
    model, _, after = trained(run.config, data_dir, fresh, mask, lambda setup: level_span(setup, 2))
    weights = analyses.AnalysisCache(run_dir, "tickets", {"version": 1}).load_weights("level_02")
    assert all(torch.equal(weights[n], t) for n, t in model.state_dict().items())
    reinit = result.table.set_index("variant").loc["reinit"]
    assert_metrics(reinit, after)
    params = dict(model.named_parameters())
    distance = learning_distance(fresh, {n: params[n].detach() for n in mask}, mask, from_pruned_as_zero=True)
    assert reinit["learning_distance"] == distance
    assert (reinit["level"], reinit["remaining"]) == (2, sum(int(keep.sum()) for keep in mask.values()))
    ticket = result.table.set_index("variant").loc["ticket"]
    assert ticket["test_acc"] == RunStore(run_dir).records()[2]["test_acc"]


def test_redense_trains_every_weight_from_the_sparse_weights_at_the_final_lr(run, run_dir, data_dir, spy):
    result = analyses.redense(run, [2], duration=DURATION, progress=False)
    (call,) = spy
    mask, weights = RunStore(run_dir).load_level_state(2)
    assert all(torch.equal(call["entry"][n], weights[n]) for n in weights)
    assert list(call["mask"]) == list(run.setup.prunable) and all(m.all() for m in call["mask"].values())
    lr, per_epoch = final_lr(run.config.training, run.setup.per_epoch), run.setup.per_epoch
    span = call["span"]
    assert span.training.lr == lr and span.schedule(0) == lr == span.schedule(span.end - 1)
    assert (span.start, span.end, span.stream) == (0, per_epoch, "redense-level_02")

    def redense_span(setup) -> Span:  # the definition: the run's settings at a constant LR, for DURATION
        training = run.config.training.model_copy(update={"lr": lr, "schedule": "constant", "warmup": Duration(0, "it"),
                                                          "duration": Duration.parse(DURATION)})
        return Span(training, Schedule(base_lr=lr, total=per_epoch), 0, per_epoch, per_epoch, run.seed,
                    "redense-level_02")

    every = dense_mask(run.setup.model, run.setup.prunable)
    model, before, after = trained(run.config, data_dir, weights, every, redense_span)
    rows = result.table.set_index("model")
    assert_metrics(rows.loc["sparse"], before)
    assert_metrics(rows.loc["redense"], after)
    assert rows.loc["sparse", "test_acc"] == RunStore(run_dir).records()[2]["test_acc"]
    cache = analyses.AnalysisCache(run_dir, "redense", result.extra["settings"].options())
    redensed = cache.load_weights("level_02")
    assert all(torch.equal(redensed[n], t) for n, t in model.state_dict().items())
    regrown = math.sqrt(sum(float((redensed[n][~keep].double() ** 2).sum()) for n, keep in mask.items()))
    moved = math.sqrt(sum(float(((redensed[n] - weights[n]).double() ** 2).sum()) for n in mask))
    assert regrown > 0, "pruned weights grow back"
    assert rows.loc["redense", "regrown"] == pytest.approx(regrown, rel=1e-12)
    assert rows.loc["redense", "moved"] == pytest.approx(moved, rel=1e-12)
    shown = result.compact.set_index("level").loc[2]
    assert shown["test_acc_redense"] == after["test_acc"] and shown["train_loss_sparse"] == before["train_loss"]


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
    train_loss = path.xs("train")["loss"]
    expected = train_loss.max() - (train_loss.loc[0.0] + train_loss.loc[1.0]) / 2
    assert barrier["barrier"] == pytest.approx(expected)


def test_second_call_reads_the_cache_and_new_levels_resume(run, run_dir, spy, monkeypatch):
    first = analyses.tickets(run, [1], oneshot=False, progress=False)
    weights = first.directory / "weights" / "level_01.safetensors"
    stamp = weights.stat().st_mtime_ns
    spy.clear()
    again = analyses.tickets(run, [1, 3], oneshot=False, progress=False)
    assert [call["span"].stream for call in spy] == ["level_03"], "only the new level is trained"
    assert weights.stat().st_mtime_ns == stamp

    def refuse(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(levels_module, "train", refuse)
    third = analyses.tickets(run, [1, 3], oneshot=False, progress=False)
    pd.testing.assert_frame_equal(again.table, third.table)
    only_first = analyses.tickets(run, [1], oneshot=False, progress=False)
    assert list(only_first.table["level"]) == [1, 1]  # ticket and re-init of the level asked for
    finished = pd.read_parquet(third.directory / "table.parquet")  # every finished item, not only this call's
    assert {1, 3} <= set(finished["level"])
    reinit = third.table[third.table["variant"] == "reinit"].set_index("level")
    pd.testing.assert_frame_equal(finished.set_index("level").loc[[1, 3], reinit.columns], reinit, check_dtype=False)


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
    shown = result.compact.set_index("level")
    assert list(result.compact.columns[:2]) == ["level", "sparsity"]
    for level in range(4):
        expected = table.loc[("reinit", level), "test_acc"] - table.loc[("ticket", level), "test_acc"]
        assert shown.loc[level, "reinit_minus_ticket"] == pytest.approx(expected)
    wins = int((shown.loc[1:, "reinit_minus_ticket"] > 0).sum())
    assert result.summary.startswith(f"random re-init beats the winning ticket at {wins} of 3 pruned levels")


def test_landscape_curves_are_the_sparse_network_moved_along_its_direction(run, run_dir):
    curves = analyses.landscape(run, [3], points=5, progress=False)
    table = curves.table.set_index(["split", "alpha"])
    assert sorted(table.index) == [(s, a) for s in ("test", "train") for a in (-1.0, -0.5, 0.0, 0.5, 1.0)]
    record = run.record(3)
    assert table.loc[("test", 0.0), "loss"] == pytest.approx(record["test_loss"], rel=1e-5)
    assert table.loc[("train", 0.0), "loss"] == pytest.approx(record["train_loss"], rel=1e-5)
    assert table.loc[("train", 0.0), "acc"] == record["train_acc_noisy"]
    mask, weights = RunStore(run_dir).load_level_state(3)
    model = run.setup.model
    model.load_state_dict(weights)
    direction = filter_normalised_direction(model, mask, generator=torch_stream(run.seed, "direction", 0))
    x, y = run.eval_set("test")
    moved = {name: (weights[name] + 0.5 * direction[name]) * mask.get(name, 1) for name in direction}
    reference = evaluate(model, x, y, state=moved)
    assert table.loc[("test", 0.5), "loss"] == pytest.approx(reference.loss, rel=1e-6)
    assert table.loc[("test", 0.5), "acc"] == reference.acc
    sharp = curves.extra["sharpness"].set_index("split")
    for split in ("train", "test"):
        loss = table.loc[split, "loss"]
        assert sharp.loc[split, "rise"] == pytest.approx((loss.loc[-0.5] + loss.loc[0.5]) / 2 - loss.loc[0.0])
        fit = 2 * np.polyfit([-0.5, 0.0, 0.5], loss.loc[[-0.5, 0.0, 0.5]].to_numpy(), 2)[0]
        assert sharp.loc[split, "curvature_fit"] == pytest.approx(fit)


def test_curvature_measures_each_level_on_its_seeded_training_subset(run, run_dir):
    hessian = analyses.curvature(run, [0, 3], subset=100, probes=4, eig_iters=5, progress=False)
    table = hessian.table.set_index("level")
    assert list(table.index) == [0, 3]
    x, y = run.eval_set("train", 100)
    for level in (0, 3):
        mask, weights = RunStore(run_dir).load_level_state(level)
        model = run.setup.model
        model.load_state_dict(weights)
        trace = hessian_trace(model, mask, x, y, probes=4, mode="reverse",
                              generator=torch_stream(run.seed, "curvature", level, "trace"))
        top = top_eigenvalue(model, mask, x, y, iters=5, tol=1e-3, mode="reverse",
                             generator=torch_stream(run.seed, "curvature", level, "eigen"))
        row = table.loc[level]
        assert (row["hessian_trace"], row["hessian_trace_se"]) == pytest.approx(trace, rel=1e-9)
        assert row["top_eigenvalue"] == pytest.approx(top, rel=1e-9)
        assert (row["examples"], row["test_acc"]) == (100, run.record(level)["test_acc"])


def test_landmarks_are_the_dense_level_and_the_found_phase_levels():
    def report(**found: Landmark | None) -> PhaseReport:
        return PhaseReport(has_double_descent=found.get("sweet") is not None, summary="", dense_test_acc=0.9,
                           interpolation_threshold=None, critical=found.get("critical"), sweet=found.get("sweet"),
                           collapse=found.get("collapse"), dip=None, rise=None, peak_above_dense=None, n_seeds=1)

    full = report(critical=Landmark(3, 0.49, 0.7), sweet=Landmark(7, 0.79, 0.85), collapse=Landmark(12, 0.93, 0.4))
    assert landmarks(full) == {"dense": 0, "critical": 3, "sweet": 7, "collapse": 12}
    assert landmarks(report(collapse=Landmark(9, 0.87, 0.3))) == {"dense": 0, "collapse": 9}


def test_unfinished_or_unknown_levels_and_missing_runs_fail_with_one_line(run_dir, tmp_path):
    partial = tmp_path / run_dir.name
    shutil.copytree(run_dir, partial, ignore=shutil.ignore_patterns("analyses"))
    (partial / "levels" / "level_03.json").unlink()
    with pytest.raises(SddError, match="level 3 of .* is not finished yet"):
        analyses.distance(partial, [3], progress=False)
    with pytest.raises(SddError, match="level 9 is not a level"):
        analyses.redense(partial, [9], progress=False)
    with pytest.raises(SddError, match="does not exist"):
        analyses.tickets(tmp_path / "nowhere", progress=False)
    assert list(analyses.distance(partial, progress=False).table["level"].unique()) == [0, 1, 2]
