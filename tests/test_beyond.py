"""Beyond the paper: a held-out noisy split, per-example predictions, distillation, entropy early
stopping, and the selection rules; each checked against an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import sddlab
from sddlab.analyses.examples import example_table, level_summary, prediction_matrix
from sddlab.antidotes import EntropyStop, activation_entropy, distillation_loss
from sddlab.config import TrainingConfig
from sddlab.data.device import prepare_data
from sddlab.epoch_end import StopRequested
from sddlab.errors import ConfigError
from sddlab.runs import run_lockstep, run_seeds, with_seeds
from sddlab.selection import RULES, describe_pick, pick_level, recommend, regret_summary, regrets
from sddlab.store import RunStore
from sddlab.studies import valley


@pytest.fixture(scope="module")
def holdout_run(tmp_path_factory, small_config, run_config):
    return run_config(small_config({"data.holdout": 0.25, "training.duration": "6ep"}), tmp_path_factory.mktemp("ho"))


def test_holdout_is_a_disjoint_noisy_split_and_zero_changes_nothing(small_config, data_dir):
    config = small_config({"data.subset": 400, "noise.rate": 0.4})
    plain = prepare_data(config.data, config.noise, 0, data_dir)
    held = prepare_data(config.with_overrides({"data.holdout": 0.25}).data, config.noise, 0, data_dir)
    assert config.with_overrides({"data.holdout": 0.0}).short_hash() == config.short_hash()
    assert plain.x_holdout is None and held.num_train == 300 and len(held.y_holdout) == 100
    # the two parts are exactly the un-split data's rows, labels and all
    rows = torch.cat([held.x_train, held.x_holdout])
    order = [int(np.flatnonzero((plain.x_train == row).all(1).numpy())[0]) for row in rows]
    assert sorted(order) == list(range(400))
    assert torch.equal(torch.cat([held.y_train, held.y_holdout]), plain.y_train[order])
    noisy_share = float((held.y_holdout != held.y_holdout_clean).double().mean())
    assert 0.2 < noisy_share < 0.5  # as noisy as training (0.4 nominal; a redraw may keep the class)


def test_stored_predictions_reproduce_every_accuracy_in_the_records(holdout_run):
    store = RunStore(holdout_run)
    labels = store.load_examples()
    for record in store.records():
        predicted = store.load_predictions(record["level"])
        assert float((predicted["train"] == labels["train_noisy"]).double().mean()) == pytest.approx(
            record["train_acc_noisy"], abs=1e-12)
        assert float((predicted["train"] == labels["train_clean"]).double().mean()) == pytest.approx(
            record["train_acc_clean"], abs=1e-12)
        assert float((predicted["test"] == labels["test"]).double().mean()) == pytest.approx(record["test_acc"])
        assert float((predicted["holdout"] == labels["holdout_noisy"]).double().mean()) == pytest.approx(
            record["holdout_acc_noisy"], abs=1e-12)
        noisy = labels["noisy"]
        assert float((predicted["train"][noisy] == labels["train_noisy"][noisy]).double().mean()) == pytest.approx(
            record["memorized"], abs=1e-12)


def test_level_summary_and_example_table_agree_with_a_loop_over_examples(holdout_run):
    records, predicted = prediction_matrix(holdout_run)
    labels = RunStore(holdout_run).load_examples()
    summary, examples = level_summary(holdout_run), example_table(holdout_run)
    assert summary["noisy_fitted"].tolist() == pytest.approx(records["memorized"].tolist())
    noisy_label = labels["train_noisy"].numpy()
    for index in range(predicted.shape[1]):
        fitted = [predicted[level, index] == noisy_label[index] for level in range(predicted.shape[0])]
        expected = next((level for level in range(len(fitted)) if not any(fitted[level:])), None)
        got = examples.loc[index, "stops_fitted_level"]
        assert (math.isnan(got) if expected is None else got == expected), index
        assert examples.loc[index, "levels_fitted"] == sum(fitted)
    clean = ~labels["noisy"].numpy()
    right = predicted[:, clean] == labels["train_clean"].numpy()[clean]
    assert summary["clean_forgotten"].tolist() == pytest.approx([(right[0] & ~row).mean() for row in right])


def test_distillation_loss_is_the_weighted_sum_of_its_two_terms():
    torch.manual_seed(0)
    teacher = nn.Linear(5, 3)
    inputs, logits, targets = torch.randn(8, 5), torch.randn(8, 3), torch.randint(0, 3, (8,))
    t, w = 3.0, 0.3
    p = torch.softmax(teacher(inputs).detach() / t, 1)
    kl = (p * (p.log() - torch.log_softmax(logits / t, 1))).sum(1).mean()
    expected = (1 - w) * nn.functional.cross_entropy(logits, targets) + w * t * t * kl
    assert float(distillation_loss(teacher, w, t)(logits, inputs, targets)) == pytest.approx(float(expected), rel=1e-6)
    assert float(distillation_loss(teacher, 0.0, t)(logits, inputs, targets)) == pytest.approx(
        float(nn.functional.cross_entropy(logits, targets)), rel=1e-7)


def test_distillation_leaves_the_dense_level_alone_and_changes_the_pruned_ones(small_config, run_config, tmp_path):
    plain = RunStore(run_config(small_config(), tmp_path)).records()
    taught = RunStore(run_config(small_config({"training.distill_weight": 0.7}), tmp_path)).records()
    assert taught[0]["test_loss"] == plain[0]["test_loss"]
    assert all(a["learning_distance"] != b["learning_distance"] for a, b in zip(taught[1:], plain[1:], strict=True))


def test_activation_entropy_of_units_on_for_known_shares():
    model = nn.Sequential(nn.Linear(1, 3), nn.ReLU())
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0], [1.0], [1.0]]))
        model[0].bias.copy_(torch.tensor([-1.0, -3.0, 10.0]))  # on for 3/4, 1/4, 4/4 of the probe
    probe = torch.arange(4.0).unsqueeze(1) + 0.5

    def h(p):
        return 0.0 if p in (0, 1) else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))

    assert activation_entropy(model, probe) == pytest.approx((h(0.75) + h(0.25) + h(1.0)) / 3)


def test_entropy_stop_waits_for_patience_epochs_within_the_tolerance():
    stop = EntropyStop(TrainingConfig(early_stop="entropy", early_stop_patience=2, early_stop_tolerance=0.01))
    decisions = [stop.update(value) for value in [0.9, 0.7, 0.6, 0.601, 0.605, 0.4, 0.401, 0.402]]
    assert decisions == [False, False, False, False, True, False, False, True]


def test_entropy_early_stop_shortens_levels_and_resumes_to_the_same_records(small_config, run_config, tmp_path,
                                                                             without_seconds):
    config = small_config({"training.duration": "8ep", "training.early_stop": "entropy",
                           "training.early_stop_patience": 1, "training.early_stop_tolerance": 0.2})
    reference = RunStore(run_config(config, tmp_path / "reference")).records()
    assert any(record["iterations"] < 8 * 4 for record in reference)  # 200 examples, batch 64: 4 a epoch
    calls = []
    with pytest.raises(StopRequested):
        run_config(config, tmp_path / "stopped", should_stop=lambda: calls.append(1) or len(calls) >= 2,
                   checkpoint_every=0)
    resumed = RunStore(run_config(config, tmp_path / "stopped")).records()
    assert without_seconds(resumed) == without_seconds(reference)


def test_entropy_stop_needs_relu_modules_and_lockstep_refuses_antidotes(small_config, data_dir, tmp_path):
    with pytest.raises(ConfigError, match="training.early_stop"):
        sddlab.run(small_config({"training.early_stop": "entropy", "model.name": "resnet18", "data.name": "mnist5k"}),
                   tmp_path, data_dir=data_dir, progress=False, device="cpu")
    assert not any(tmp_path.iterdir())
    config = small_config({"training.distill_weight": 0.5})
    with pytest.raises(ConfigError, match="distillation"):
        run_lockstep(with_seeds(config, [0, 1]), tmp_path, data_dir=data_dir, progress=False, device="cpu")
    assert not any(tmp_path.iterdir())
    dirs = run_seeds(config, [0, 1], tmp_path, data_dir=data_dir, progress=False, device="cpu")  # one by one
    assert [RunStore(d).config().experiment.seed for d in dirs] == [0, 1]


def _table(holdout, distance, noisy_train, test):
    levels = range(len(test))
    return pd.DataFrame({"level": levels, "sparsity": [1 - 0.8**lv for lv in levels], "holdout_acc_noisy": holdout,
                         "learning_distance": distance, "train_acc_noisy": noisy_train, "test_acc": test,
                         "noise.rate": 0.1})


def test_each_rule_picks_what_its_definition_says_and_never_reads_the_test_columns():
    table = _table(holdout=[0.5, 0.4, 0.6, 0.6, 0.3], distance=[1, 3, 2, 1.5, 2.5],
                   noisy_train=[1.0, 1.0, 0.995, 0.9, 0.5], test=[0.7, 0.6, 0.8, 0.75, 0.4])
    picks = {name: pick_level(table, name) for name in RULES}
    assert picks == {"dense": 0, "holdout": 3, "holdout-smoothed": 2, "learning-distance": 3, "memorisation-ends": 3,
                     "noise-floor": 3}
    scrambled = table.assign(test_acc=table["test_acc"][::-1].to_numpy())
    assert {name: pick_level(scrambled, name) for name in RULES} == picks
    regret = regrets(table).set_index("rule")["regret_points"]
    assert regret.to_dict() == pytest.approx({"dense": 10.0, "holdout": 5.0, "holdout-smoothed": 0.0,
                                              "learning-distance": 5.0, "memorisation-ends": 5.0,
                                              "noise-floor": 5.0})
    with pytest.raises(ValueError, match="data.holdout"):
        pick_level(table.drop(columns="holdout_acc_noisy"), "holdout")


def test_regret_summary_averages_runs_and_recommends_the_lowest_mean():
    a = _table([0.5, 0.6, 0.4], [1, 2, 1], [1.0, 0.9, 0.5], [0.6, 0.7, 0.5]).assign(run="a", data="x")
    b = _table([0.5, 0.4, 0.6], [1, 2, 1], [1.0, 1.0, 0.5], [0.6, 0.7, 0.5]).assign(run="b", data="x")
    summary = regret_summary(pd.concat([a, b]), ["data"]).set_index("rule")
    assert summary.loc["holdout", "regret_mean"] == pytest.approx((0.0 + 20.0) / 2)
    assert summary.loc["holdout", "regret_max"] == pytest.approx(20.0)
    assert summary.loc["dense", "runs"] == 2
    means = summary["regret_mean"].drop("dense")
    assert recommend(summary.reset_index()) == means.idxmin()


def test_describe_pick_uses_the_best_rule_the_columns_allow():
    table = _table(holdout=[0.5, 0.4, 0.6, 0.6, 0.3], distance=[1, 3, 2, 1.5, 2.5],
                   noisy_train=[1.0, 1.0, 0.995, 0.9, 0.5], test=[0.7, 0.6, 0.8, 0.75, 0.4])
    assert "the holdout-smoothed rule keeps level 2 (36.00% sparsity)" in describe_pick(table.to_dict("records"))
    noisy_only = table.drop(columns=["holdout_acc_noisy", "noise.rate"]).to_dict("records")
    without = describe_pick(noisy_only)
    assert "the memorisation-ends rule keeps level 3 (48.80% sparsity)" in without and "data.holdout" in without
    assert "the noise-floor rule keeps level 4 (59.04% sparsity)" in describe_pick(noisy_only, noise_rate=0.4)


def test_valley_is_the_deepest_drop_below_both_sides():
    assert valley(np.array([0.7, 0.6, 0.5, 0.8, 0.75])) == (2, pytest.approx(0.2))
    assert valley(np.array([0.86, 0.7, 0.86, 0.9, 0.6])) == (1, pytest.approx(0.16))
    assert valley(np.array([0.9, 0.8, 0.7]))[1] == 0.0  # monotone: no valley


def test_example_viewer_shows_the_hovered_example_and_its_labels(holdout_run, small_config, data_dir):
    from sddlab.analyses.examples import images_of
    from sddlab.app.example_viewer import ExampleViewer
    from sddlab.figures.beyond import examples_figure

    examples = example_table(holdout_run)
    config = RunStore(holdout_run).config()
    data = prepare_data(config.data, config.noise, config.experiment.seed, data_dir)
    images = images_of(data.x_train, list(examples["example"]), data.spec)
    assert images.shape == (len(examples), 8, 8)
    # the digits' standardisation undone: scikit-learn's pixel values, whole numbers from 0 to 16
    assert np.allclose(images, images.round(), atol=1e-4) and images.min() > -1e-4 and images.max() < 16 + 1e-4
    assert len(np.unique(images.round())) > 10
    viewer = ExampleViewer(examples_figure(examples, 0.5), examples, images)
    noisy = examples[examples["noisy"]].iloc[0]
    # the scatter holds one point per noisy example, its index first in customdata
    assert [int(row[0]) for row in viewer.figure.data[0].customdata] == examples[examples["noisy"]]["example"].tolist()
    point = type("Points", (), {"point_inds": [0]})()
    viewer._hovered(viewer.figure.data[0], point, None)
    assert np.array_equal(np.asarray(viewer.image.data[0].z, dtype=float), images[int(noisy["example"])])
    assert f"true label {int(noisy['true_label'])}" in viewer.caption.value
    assert f"trained with label <b>{int(noisy['label'])}</b> (noisy)" in viewer.caption.value


def test_entropy_early_stop_reads_images_as_evaluation_sees_them(small_config, run_config, tmp_path):
    config = small_config({"data.name": "mnist5k", "model.name": "lenet-300-100", "training.duration": "4ep",
                           "experiment.levels": 1, "training.early_stop": "entropy",
                           "training.early_stop_patience": 1, "training.early_stop_tolerance": 0.5})
    records = RunStore(run_config(config, tmp_path)).records()
    assert [record["iterations"] for record in records] == [2 * 4, 2 * 4]  # stopped after epoch 2 of 4
