"""A conv net with BatchNorm through the whole IMP flow on CPU: CIFAR files in the real format, on-device
augmentation, channels-last, resume to identical records."""

from __future__ import annotations

import pytest
import torch
from test_vision_data import write_cifar10

import sddlab
from sddlab.epoch_end import StopRequested
from sddlab.store import RunStore

OVERRIDES = {
    "model.width": 0.0625, "training.duration": "2ep", "training.batch_size": 16, "experiment.levels": 2,
    "retraining.rewind_point": "2it", "noise.rate": 0.2,
}


@pytest.fixture
def cifar_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SDDLAB_NO_DOWNLOAD", "1")
    write_cifar10(tmp_path / "data", n=12)
    return tmp_path / "data"


def test_vgg_runs_every_level_with_pruned_weights_zero_and_resumes_identically(tmp_path, cifar_dir, without_seconds):
    config = sddlab.get_preset("vgg16-cifar10").with_overrides(OVERRIDES)
    run_dir = sddlab.run(config, tmp_path / "a", data_dir=cifar_dir, device="cpu", progress=False)
    table = sddlab.load(run_dir)
    assert list(table["level"]) == [0, 1, 2] and table["sparsity"].is_monotonic_increasing
    assert (run_dir / "checkpoints" / "rewind.safetensors").exists()
    masks, weights = RunStore(run_dir).load_level_state(2)
    assert "fc.weight" not in masks, "VGG-16's output layer is not pruned"
    for name, keep in masks.items():
        assert torch.all(weights[name][~keep] == 0)

    calls = []

    def stop_after_three_epochs() -> bool:  # lands mid-level (level 1 after its first epoch)
        calls.append(1)
        return len(calls) >= 3  # a stop request stays set, as the explorer's

    with pytest.raises(StopRequested):
        sddlab.run(config, tmp_path / "b", data_dir=cifar_dir, device="cpu", progress=False,
                   should_stop=stop_after_three_epochs, checkpoint_every=0)
    resumed = sddlab.run(config, tmp_path / "b", data_dir=cifar_dir, device="cpu", progress=False)
    assert without_seconds(RunStore(resumed).records()) == without_seconds(RunStore(run_dir).records())
