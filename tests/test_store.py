"""Run directories: atomic writes, checkpoints, records and tables, the index, one writer at a time."""

from __future__ import annotations

import json
import os
import stat

import pandas as pd
import pytest
import torch
from filelock import Timeout

import sddlab
from sddlab.collect import find_runs, index
from sddlab.config import Config
from sddlab.errors import ConfigError, SddError
from sddlab.io import atomic_write_text, load_metadata, load_tensors, save_tensors, write_json
from sddlab.paths import check_writable
from sddlab.store import RunStore


def test_atomic_writes_replace_whole_files_and_leave_no_temporaries(tmp_path):
    path = tmp_path / "deep" / "folder" / "note.txt"
    atomic_write_text(path, "first")
    atomic_write_text(path, "second")
    assert path.read_text() == "second"
    write_json(tmp_path / "record.json", {"b": 1, "a": [1.5, None]})
    assert json.loads((tmp_path / "record.json").read_text()) == {"a": [1.5, None], "b": 1}
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []


def test_tensors_round_trip_with_metadata(tmp_path):
    tensors = {
        "weights/a": torch.randn(3, 4),
        "mask/a": torch.rand(3, 4) > 0.5,
        "step": torch.tensor(7.0),
        "view": torch.arange(10.0)[::2],  # not contiguous: saved as a copy
    }
    path = tmp_path / "checkpoint.safetensors"
    save_tensors(path, tensors, {"iteration": "12"})
    loaded = load_tensors(path)
    assert loaded.keys() == tensors.keys()
    assert all(torch.equal(loaded[k], tensors[k]) and loaded[k].dtype == tensors[k].dtype for k in tensors)
    assert load_metadata(path) == {"iteration": "12"}


def test_a_folder_without_config_is_not_a_run(tmp_path):
    with pytest.raises(SddError, match="not a run directory"):
        RunStore(tmp_path)


def test_open_or_create(tmp_path):
    config = sddlab.get_preset("tiny")
    store = RunStore.open_or_create(tmp_path, config, {"device": "cpu"})
    assert store.dir == tmp_path / config.run_name()
    assert store.config() == config and store.meta() == {"device": "cpu"}
    assert [p.name for p in tmp_path.iterdir()] == [config.run_name()]  # no staging folder left
    store.update_meta(finished=True)
    again = RunStore.open_or_create(tmp_path, config, {"device": "cuda"})
    assert again.dir == store.dir
    assert again.meta() == {"device": "cpu", "finished": True}  # an existing run keeps its meta
    # only name and description may differ: they are not part of the hash
    renamed = config.with_overrides({"description": "the same experiment, described again"})
    assert RunStore.open_or_create(tmp_path, renamed, {}).dir == store.dir


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_run_files_follow_the_umask_so_colleagues_can_read_them(tmp_path, umask):
    previous = os.umask(umask)
    try:
        store = RunStore.open_or_create(tmp_path, sddlab.get_preset("tiny"), {"device": "cpu"})
        write_json(store.dir / "extra.json", {"a": 1})
    finally:
        os.umask(previous)
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o777 & ~umask
    for name in ("config.json", "meta.json", "extra.json"):
        assert stat.S_IMODE((store.dir / name).stat().st_mode) == 0o666 & ~umask


def test_a_run_directory_holding_another_config_is_refused(tmp_path):
    config = sddlab.get_preset("tiny")
    store = RunStore.open_or_create(tmp_path, config, {})
    (store.dir / "config.json").write_text(config.with_overrides({"noise.rate": 0.1}).to_json())
    with pytest.raises(SddError, match="different config"):
        RunStore.open_or_create(tmp_path, config, {})


def test_records_and_tables(tmp_path):
    store = RunStore.open_or_create(tmp_path, Config(), {})
    assert store.records() == [] and store.table().empty
    for level in (1, 0, 2):  # written out of order, read back by level
        store.save_level(level, {"level": level, "test_acc": 0.5 + level / 10, "memorized": float("nan")})
    assert [r["level"] for r in store.records()] == [0, 1, 2]
    assert store.has_level(2) and not store.has_level(3)
    csv = pd.read_csv(store.dir / "levels.csv")
    parquet = pd.read_parquet(store.dir / "levels.parquet")
    assert csv["test_acc"].tolist() == pytest.approx([0.5, 0.6, 0.7])
    pd.testing.assert_frame_equal(parquet, store.table())
    assert csv["memorized"].isna().all()


def test_checkpoint_helpers(tmp_path):
    store = RunStore.open_or_create(tmp_path, Config(), {})
    assert not store.has_checkpoint("init")
    store.save_checkpoint("init", {"w": torch.ones(2)})
    assert store.has_checkpoint("init")
    assert torch.equal(store.load_checkpoint("init")["w"], torch.ones(2))
    store.remove_checkpoint("init")
    store.remove_checkpoint("init")  # removing twice is fine
    assert not store.has_checkpoint("init")


def test_level_state_keeps_the_mask_order(tmp_path):
    store = RunStore.open_or_create(tmp_path, Config(), {})
    names = ["z.weight", "a.weight", "m.weight", "b.weight"]  # not sorted: the order must survive
    mask = {name: torch.rand(3, 3) > 0.5 for name in names}
    weights = {name: torch.randn(3, 3) for name in names} | {"z.bias": torch.randn(3)}
    for _ in range(5):  # the file's own key order varies; the saved order must win every time
        store.save_level_state(4, mask, weights)
        loaded_mask, loaded_weights = store.load_level_state(4)
        assert list(loaded_mask) == names
        assert all(torch.equal(loaded_mask[n], mask[n]) and loaded_mask[n].dtype == torch.bool for n in names)
        assert loaded_weights.keys() == weights.keys()


def test_one_writer_per_run_directory(tmp_path):
    store = RunStore.open_or_create(tmp_path, Config(), {})
    with store.lock(), pytest.raises(Timeout):
        store.lock(timeout=0.05).acquire()
    with store.lock(timeout=0.05):  # free again
        pass


def test_check_writable(tmp_path):
    check_writable(tmp_path / "new" / "nested")  # may be created later
    check_writable(tmp_path)
    (tmp_path / "file").write_text("")
    for path in (tmp_path / "file", tmp_path / "file" / "sub" / "deeper"):
        with pytest.raises(ConfigError) as info:
            check_writable(path)
        assert info.value.field == "results"


def test_find_runs_and_index(tmp_path, finished_run):
    results = finished_run.parent
    assert find_runs(results) == [finished_run]
    assert find_runs(tmp_path) == []
    assert index(tmp_path).empty
    # a run directory without any finished level adds no rows, a staging folder is never a run
    RunStore.open_or_create(tmp_path, Config(), {})
    (tmp_path / ".digits-0123.staging").mkdir()
    (tmp_path / ".digits-0123.staging" / "config.json").write_text(Config().to_json())
    assert find_runs(tmp_path) == [tmp_path / Config().run_name()]
    assert index(tmp_path).empty
    table = index(results)
    assert len(table) == len(RunStore(finished_run).records())
    assert index(finished_run).equals(table)  # a run directory itself
    assert sddlab.load(finished_run).equals(table)
    assert set(Config().flat()) <= set(table.columns)
