"""Fashion-MNIST read in place from a system package's folder (Debian's dataset-fashion-mnist), in its real format."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from sddlab.data import vision
from sddlab.data.idx import read_idx
from sddlab.errors import DatasetMissing, SddError

FILES = {
    "train-images-idx3-ubyte.gz": (2051, (7, 28, 28)),
    "train-labels-idx1-ubyte.gz": (2049, (7,)),
    "t10k-images-idx3-ubyte.gz": (2051, (5, 28, 28)),
    "t10k-labels-idx1-ubyte.gz": (2049, (5,)),
}


def write_idx(path: Path, magic: int, array: np.ndarray) -> None:
    """The IDX layout the package ships: big-endian magic (0x0803 images, 0x0801 labels), dims, then the bytes."""
    with gzip.open(path, "wb") as handle:
        handle.write(struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes())


@pytest.fixture
def system_folder(tmp_path, monkeypatch) -> tuple[Path, dict[str, np.ndarray]]:
    """A package-like folder of four small gzipped IDX files, registered as Fashion-MNIST's system copy."""
    folder, rng, arrays = tmp_path / "usr-share-datasets" / "fashion-mnist", np.random.default_rng(3), {}
    folder.mkdir(parents=True)
    for name, (magic, shape) in FILES.items():
        high = 10 if "labels" in name else 256
        arrays[name] = rng.integers(0, high, shape, dtype=np.uint8)
        write_idx(folder / name, magic, arrays[name])
    monkeypatch.setattr(vision, "SYSTEM_COPIES", {"fashion-mnist": ([tmp_path / "absent", folder], "apt hint")})
    monkeypatch.setenv("SDDLAB_NO_DOWNLOAD", "1")
    return folder, arrays


def test_system_copy_is_read_in_place_and_equals_what_was_written(tmp_path, system_folder):
    folder, arrays = system_folder
    data_dir = tmp_path / "data"
    raw = vision.load_fashion_mnist(data_dir)
    assert torch.equal(raw.x_train, torch.from_numpy(arrays["train-images-idx3-ubyte.gz"]).unsqueeze(1))
    assert torch.equal(raw.y_train, torch.from_numpy(arrays["train-labels-idx1-ubyte.gz"]).long())
    assert torch.equal(raw.x_test, torch.from_numpy(arrays["t10k-images-idx3-ubyte.gz"]).unsqueeze(1))
    assert torch.equal(raw.y_test, torch.from_numpy(arrays["t10k-labels-idx1-ubyte.gz"]).long())
    assert raw.x_train.dtype == torch.uint8 and raw.y_train.dtype == torch.long and raw.num_classes == 10
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)  # nothing copied or unpacked next to them
    assert not (data_dir / "fashion-mnist").exists()  # nor into data/


def test_a_copy_in_data_takes_precedence_over_the_system_one(tmp_path, system_folder):
    folder, arrays = system_folder
    own = tmp_path / "data" / "fashion-mnist" / "FashionMNIST" / "raw"
    own.mkdir(parents=True)
    for name, (magic, _) in FILES.items():
        write_idx(own / name, magic, 255 - arrays[name] if "images" in name else arrays[name])
    raw = vision.load_fashion_mnist(tmp_path / "data")
    assert torch.equal(raw.x_train, 255 - torch.from_numpy(arrays["train-images-idx3-ubyte.gz"]).unsqueeze(1))


@pytest.mark.parametrize(("header", "data", "message"), [
    (struct.pack(">I", 0x0D03), True, r"not an unsigned-byte IDX file \(magic 00000d03\)"),  # float data
    (struct.pack(">I", 0x0803) + struct.pack(">2I", 7, 28), False, r"truncated IDX header"),
    (struct.pack(">I", 0x0803) + struct.pack(">3I", 10**8, 28, 28), True, r"more than any data set this reader"),
    (struct.pack(">I", 0x0803) + struct.pack(">3I", 9, 28, 28), True, r"header says 7056 bytes of data, the file "
                                                                         r"holds 5488"),
])
def test_malformed_header_is_refused_in_one_line(system_folder, tmp_path, header, data, message):
    folder, arrays = system_folder
    path = folder / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as handle:  # the header, then (unless truncated) the 7 images' bytes
        handle.write(header + (arrays["train-images-idx3-ubyte.gz"].tobytes() if data else b""))
    with pytest.raises(SddError, match=message) as caught:
        vision.load_fashion_mnist(tmp_path / "data")
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_labels_that_disagree_with_the_images_are_refused(system_folder, tmp_path):
    folder, _ = system_folder
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", 2049, np.zeros(4, np.uint8))  # 4 labels for 5 images
    with pytest.raises(SddError, match=r"fashion-mnist under .*: image and label files disagree"):
        vision.load_fashion_mnist(tmp_path / "data")


def test_without_any_copy_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SDDLAB_NO_DOWNLOAD", "1")
    monkeypatch.setattr(vision, "SYSTEM_COPIES", {"fashion-mnist": ([tmp_path / "absent"], vision.SYSTEM_COPIES[
        "fashion-mnist"][1])})
    with pytest.raises(DatasetMissing, match=r"install it system-wide: sudo apt-get install dataset-fashion-mnist"):
        vision.load_fashion_mnist(tmp_path / "data")


def test_plain_idx_files_read_the_same_as_gzipped_ones(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", 0x0803, array)
    (tmp_path / "a").write_bytes(gzip.decompress((tmp_path / "a.gz").read_bytes()))
    assert np.array_equal(read_idx(tmp_path / "a.gz"), array) and np.array_equal(read_idx(tmp_path / "a"), array)


def test_the_explorer_offers_fashion_mnist_presets_only_when_installed(tmp_path, system_folder, monkeypatch):
    from sddlab.app.explorer_choices import offered_presets
    from sddlab.presets import list_presets

    fashion = {name for name, config in list_presets().items() if config.data.name == "fashion-mnist"}
    assert "fig1-lenet-fashion" in fashion
    assert vision.idx_set_on_disk("fashion-mnist", tmp_path / "data")
    assert set(offered_presets(tmp_path / "data")) == set(list_presets())  # installed: all offered
    monkeypatch.setattr(vision, "SYSTEM_COPIES", {"fashion-mnist": ([tmp_path / "absent"], "hint")})
    assert not vision.idx_set_on_disk("fashion-mnist", tmp_path / "data")
    offered = offered_presets(tmp_path / "data")
    assert set(offered) == set(list_presets()) - fashion and "digits" in offered
    assert "fig1-lenet-fashion" in offered_presets(tmp_path / "data", keep="fig1-lenet-fashion")
    own = tmp_path / "data" / "fashion-mnist" / "FashionMNIST" / "raw"  # a copy in data/ counts as well
    own.mkdir(parents=True)
    for name in FILES:
        (own / name.removesuffix(".gz")).write_bytes(b"")
    assert set(offered_presets(tmp_path / "data")) == set(list_presets())
