"""Distillation from a sparse teacher: the teacher is the level a noisy-label rule keeps from the plain twin run,
no rule ever reads a clean label, and the antidote table carries the new row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import sddlab
from sddlab.antidotes import sparse_teacher, teacher_config, teacher_level
from sddlab.data.device import prepare_data
from sddlab.errors import ConfigError
from sddlab.models import build_model
from sddlab.selection import NOISY_COLUMNS, RULES, Rule, pick_level
from sddlab.store import RunStore
from sddlab.studies import antidote_table, run_study

CLEAN = ("test_acc", "test_loss", "test_ece", "test_ece_adaptive", "test_confidence", "train_acc_clean",
         "memorized", "holdout_acc_clean")


def random_table(rng: np.random.Generator, levels: int = 12) -> pd.DataFrame:
    """A run's level table with every column a rule could see, and the clean ones it must not."""
    table = pd.DataFrame({"level": range(levels), "sparsity": 1 - 0.8 ** np.arange(levels),
                          "train_acc_noisy": np.sort(rng.uniform(0.4, 1.0, levels))[::-1],
                          "holdout_acc_noisy": rng.uniform(0.3, 0.7, levels),
                          "learning_distance": rng.uniform(1, 10, levels), "noise.rate": 0.4})
    return table.assign(**{column: rng.uniform(0, 1, levels) for column in CLEAN})


def test_no_rule_reads_a_clean_column():
    assert not set(NOISY_COLUMNS) & set(CLEAN)
    rng = np.random.default_rng(0)
    for _ in range(25):
        table = random_table(rng)
        scrambled = table.assign(**{column: rng.uniform(0, 1, len(table)) for column in CLEAN})
        for rule in RULES:
            assert pick_level(scrambled, rule) == pick_level(table, rule), rule
            assert teacher_level(scrambled, rule, 0.4) == teacher_level(table, rule, 0.4) == pick_level(table, rule)


def test_a_rule_is_handed_only_noisy_columns(monkeypatch):
    seen = []
    for name, rule in RULES.items():
        def spy(table, pick=rule.pick):
            seen.append(set(table.columns))
            return pick(table)

        monkeypatch.setitem(RULES, name, Rule(rule.name, rule.description, spy, rule.needs))
    table = random_table(np.random.default_rng(1))
    for name in RULES:
        teacher_level(table, name, 0.4)
    assert len(seen) == len(RULES) and all(columns <= set(NOISY_COLUMNS) for columns in seen)


def test_the_teacher_is_the_rules_level_of_the_plain_twin(tmp_path, small_config, run_config, data_dir):
    config = small_config({"data.holdout": 0.25, "training.duration": "4ep", "experiment.levels": 4,
                           "training.distill_weight": 0.5, "training.distill_teacher": "sparse"})
    twin = teacher_config(config)
    plain = small_config({"data.holdout": 0.25, "training.duration": "4ep", "experiment.levels": 4})
    assert twin.run_name() == plain.run_name()  # the same run directory as the run without any antidote
    student = run_config(config, tmp_path)
    teacher_dir = tmp_path / plain.run_name()
    assert RunStore(teacher_dir).meta().get("finished")  # run first, on its own
    twin_table = RunStore(teacher_dir).table()
    level = pick_level(twin_table.assign(**{"noise.rate": config.noise.rate}), "holdout-smoothed")
    data = prepare_data(config.data, config.noise, config.experiment.seed, data_dir)
    model = build_model(config.model, data.spec.input_shape, data.num_classes, 0)
    teacher, picked = sparse_teacher(config, model, tmp_path)
    assert picked == level
    mask, weights = RunStore(teacher_dir).load_level_state(level)
    for name, tensor in teacher.state_dict().items():
        expected = weights[name] * mask[name] if name in mask else weights[name]
        assert torch.equal(tensor, expected), name
    assert not any(p.requires_grad for p in teacher.parameters()) and not teacher.training
    # the student learns from the teacher from the dense level on: its curve is not the twin's
    students = RunStore(student).records()
    assert students[0]["test_loss"] != twin_table["test_loss"].iloc[0]
    assert len(students) == config.experiment.levels + 1


def test_bad_teacher_settings_are_one_line(small_config):
    with pytest.raises(ConfigError, match="training.distill_teacher='sparse' is not allowed: dense unless"):
        small_config({"training.distill_teacher": "sparse"})
    with pytest.raises(ConfigError, match="training.distill_rule='holdout-smoothed' is not allowed: one of dense"):
        small_config({"training.distill_weight": 0.5, "training.distill_teacher": "sparse"})
    with pytest.raises(ConfigError, match="training.distill_rule='oracle' is not allowed"):
        small_config({"training.distill_rule": "oracle"})
    config = small_config({"training.distill_weight": 0.5, "training.distill_teacher": "sparse",
                           "training.distill_rule": "noise-floor"})
    assert teacher_config(config).short_hash() == small_config().short_hash()


def test_the_antidote_table_has_a_sparse_teacher_row(tmp_path, data_dir):
    small = {"model.hidden": [16, 16], "training.duration": "3ep", "experiment.levels": 3, "data.subset": 300}
    table = run_study(["tiny"], [0, 1], antidotes=["none", "distillation", "sparse-distillation"], holdout=0.25,
                      overrides=small, results=tmp_path, data_dir=data_dir, device="cpu")
    summary = antidote_table(table).set_index("antidote")
    assert summary.index.tolist() == ["none", "distillation", "sparse-distillation"]
    assert (summary["seeds"] == 2).all()
    sparse = table[table["antidote"] == "sparse-distillation"]
    assert (sparse["training.distill_teacher"] == "sparse").all()
    dense = sparse[sparse["level"] == 0]["test_acc"].mean()
    assert summary.loc["sparse-distillation", "dense_acc_mean"] == pytest.approx(dense)
    # the teachers are the plain runs of the table's "none" rows: no extra run directory was made
    assert len({*table["run"]}) == 6 and len([p for p in tmp_path.iterdir() if p.name.startswith("tiny-")]) == 6
    assert sddlab.index(tmp_path)["run"].nunique() == 6
