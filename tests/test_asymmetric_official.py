"""CIFAR-100 asymmetric noise: the real super-classes by default, the paper's code's map by config."""

from __future__ import annotations

import torch

from sddlab.config import Config
from sddlab.data import RawData
from sddlab.data import device as device_module
from sddlab.data.cifar import CIFAR100_COARSE


def fake_cifar100(name: str, data_dir: str) -> RawData:
    """20 images of each of the 100 classes (blank pixels): enough to see every class move."""
    labels = torch.arange(100).repeat_interleave(20)
    images = torch.zeros(len(labels), 3, 32, 32, dtype=torch.uint8)
    return RawData(images, labels, images[:100], torch.arange(100), 100)


def corrupted(monkeypatch, asymmetric_map: str):
    monkeypatch.setattr(device_module, "_load_raw", fake_cifar100)
    config = Config(data={"name": "cifar100"}, noise={"type": "asymmetric", "rate": 0.4,
                                                      "asymmetric_map": asymmetric_map})
    data = device_module.prepare_data(config.data, config.noise, 0)
    return config, data.y_train_clean[data.noisy], data.y_train[data.noisy], data


def test_official_map_flips_within_blocks_of_five_consecutive_classes(monkeypatch):
    config, clean, noisy, data = corrupted(monkeypatch, "official")
    assert config.noise.asymmetric_map == "official"
    assert torch.equal(noisy, clean // 5 * 5 + (clean % 5 + 1) % 5)  # the paper's code, written out here
    assert int(data.noisy.sum()) == 100 * 8  # ceil(0.4 x 20) of every class


def test_default_map_flips_within_the_real_super_classes(monkeypatch):
    config, clean, noisy, _ = corrupted(monkeypatch, "classes")
    coarse = torch.tensor(CIFAR100_COARSE)
    assert torch.equal(coarse[clean], coarse[noisy]) and bool((clean != noisy).all())
    blocks = clean // 5 * 5 + (clean % 5 + 1) % 5
    assert not torch.equal(noisy, blocks)  # the two maps differ
    official = config.with_overrides({"noise.asymmetric_map": "official"})
    assert "asymmetric_map" not in config.hash_payload()["noise"] and official.run_name() != config.run_name()
