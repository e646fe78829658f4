"""Image data sets read from small files in the real on-disk formats, and the device-side transforms."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import tarfile
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.datasets
import torchvision.datasets.utils
import torchvision.transforms.v2.functional as TF
from PIL import Image

import sddlab.data.vision
from sddlab.data import DATASETS, augment
from sddlab.data.cifar import CIFAR100_COARSE, cifar100_asymmetric, cifar100_asymmetric_official_code
from sddlab.data.tinyimagenet import load_tiny_imagenet, reorganise_tiny_imagenet
from sddlab.errors import DatasetMissing, SddError

IMAGENET = (augment.IMAGENET_MEAN, augment.IMAGENET_STD)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("SDDLAB_NO_DOWNLOAD", "1")


# -- MNIST / Fashion-MNIST: gzipped IDX files ----------------------------------------------------------
def write_idx_gz(path: Path, array: np.ndarray) -> None:
    """IDX: magic 0x0000 08 <ndim> (2051 images, 2049 labels), big-endian dims, then the raw uint8 data."""
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as handle:
        handle.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_mnist(root: Path, folder: str, n_train: int = 12, n_test: int = 6, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_idx_gz(root / folder / "raw" / f"{name}.gz", array)
    return arrays


def test_idx_magic_numbers(tmp_path):
    write_idx_gz(tmp_path / "a.gz", np.zeros((2, 28, 28), np.uint8))
    write_idx_gz(tmp_path / "b.gz", np.zeros(2, np.uint8))
    with gzip.open(tmp_path / "a.gz") as images, gzip.open(tmp_path / "b.gz") as labels:
        assert int.from_bytes(images.read(4), "big") == 2051 and int.from_bytes(labels.read(4), "big") == 2049


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_like_loads_from_gzipped_idx(tmp_path, name, folder):
    arrays = write_mnist(tmp_path / name, folder)
    raw = DATASETS[name].load(tmp_path)
    assert raw.x_train.shape == (12, 1, 28, 28) and raw.x_train.dtype == torch.uint8
    assert raw.x_test.shape == (6, 1, 28, 28) and raw.num_classes == 10
    assert np.array_equal(raw.x_train[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    assert np.array_equal(raw.y_test.numpy(), arrays["t10k-labels-idx1-ubyte"])
    assert raw.y_train.dtype == torch.int64
    spec = DATASETS[name]
    assert spec.input_shape == (1, 28, 28)
    expected = (raw.x_train.float() / 255 - 0.1307) / 0.3081
    generator = torch.Generator().manual_seed(0)
    assert torch.allclose(spec.train_transform(raw.x_train, generator), expected, atol=1e-6)
    assert torch.allclose(spec.eval_transform(raw.x_test), (raw.x_test.float() / 255 - 0.1307) / 0.3081, atol=1e-6)


def test_mnist_label_count_mismatch_is_reported(tmp_path):
    write_mnist(tmp_path / "mnist", "MNIST")
    write_idx_gz(tmp_path / "mnist" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(SddError, match="disagree"):
        DATASETS["mnist"].load(tmp_path)


# -- CIFAR: pickled python batches ---------------------------------------------------------------------
def dump(path: Path, entry: dict, str_keys: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if str_keys:
        entry = {key.decode(): value for key, value in entry.items()}
    with open(path, "wb") as handle:
        pickle.dump(entry, handle, protocol=2)


def write_cifar10(root: Path, n: int = 3, seed: int = 0, str_keys: bool = False) -> tuple[np.ndarray, list]:
    rng = np.random.default_rng(seed)
    folder = root / "cifar10" / "cifar-10-batches-py"
    data, labels = [], []
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        batch = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        batch_labels = [int(v) for v in rng.integers(0, 10, n)]
        entry = {b"batch_label": b"x", b"labels": batch_labels, b"data": batch, b"filenames": [b"f.png"] * n}
        dump(folder / name, entry, str_keys)
        data.append(batch)
        labels.append(batch_labels)
    dump(folder / "batches.meta", {b"label_names": [b"airplane"] * 10, b"num_cases_per_batch": n}, str_keys)
    return np.concatenate(data), sum(labels, [])


def write_cifar100(root: Path, n: int = 5, seed: int = 0, coarse_offset: int = 0) -> tuple[np.ndarray, list]:
    rng = np.random.default_rng(seed)
    folder = root / "cifar100" / "cifar-100-python"
    data, labels = [], []
    for name in ("train", "test"):
        batch = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        fine = [int(v) for v in rng.integers(0, 100, n)]
        coarse = [(CIFAR100_COARSE[f] + coarse_offset) % 20 for f in fine]
        entry = {b"filenames": [b"f.png"] * n, b"batch_label": b"x", b"fine_labels": fine}
        dump(folder / name, {**entry, b"coarse_labels": coarse, b"data": batch})
        data.append(batch)
        labels.append(fine)
    dump(folder / "meta", {b"fine_label_names": [b"apple"] * 100, b"coarse_label_names": [b"fish"] * 20})
    return np.concatenate(data), sum(labels, [])


@pytest.mark.parametrize("str_keys", [False, True])
def test_cifar10_reads_official_batches(tmp_path, str_keys):
    data, labels = write_cifar10(tmp_path, str_keys=str_keys)
    raw = DATASETS["cifar10"].load(tmp_path)
    assert raw.x_train.shape == (15, 3, 32, 32) and raw.x_train.dtype == torch.uint8
    assert raw.x_test.shape == (3, 3, 32, 32) and raw.num_classes == 10
    assert raw.y_train.tolist() == labels[:15] and raw.y_test.tolist() == labels[15:]
    # row layout: 1024 red, 1024 green, 1024 blue values, each 32×32 row-major
    k, c, i, j = 4, 2, 5, 17
    assert raw.x_train[k, c, i, j] == data[k, c * 1024 + i * 32 + j]


def _str(text: bytes) -> bytes:
    return (b"U" + bytes([len(text)]) if len(text) < 256 else b"T" + struct.pack("<i", len(text))) + text


def python2_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch pickled as Python 2 / numpy 1 wrote the official files: byte-string keys and pixel data."""
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + _str(b"b") + b"\x87R"
        + b"(K\x01M" + struct.pack("<H", len(data)) + b"M" + struct.pack("<H", 3072) + b"\x86"
        + b"cnumpy\ndtype\n" + _str(b"u1") + b"K\x00K\x01\x87R"
        + b"(K\x03" + _str(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        + b"\x89" + _str(data.tobytes()) + b"tb"
    )  # fmt: skip
    label_list = b"](" + b"".join(b"K" + bytes([v]) for v in labels) + b"e"
    entry = _str(b"batch_label") + _str(b"training batch 1 of 5") + _str(b"data") + array
    return b"\x80\x02}(" + entry + _str(b"labels") + label_list + b"u."


def test_cifar10_reads_python2_pickles(tmp_path):
    write_cifar10(tmp_path)
    data = np.random.default_rng(5).integers(0, 256, (4, 3072), dtype=np.uint8)
    (tmp_path / "cifar10" / "cifar-10-batches-py" / "data_batch_1").write_bytes(python2_batch(data, [3, 1, 4, 1]))
    raw = DATASETS["cifar10"].load(tmp_path)
    assert raw.x_train.shape == (16, 3, 32, 32) and raw.y_train[:4].tolist() == [3, 1, 4, 1]
    assert np.array_equal(raw.x_train[:4].reshape(4, -1).numpy(), data)


def test_cifar10_unpacks_a_tarball(tmp_path):
    source = tmp_path / "src"
    write_cifar10(source)
    (tmp_path / "data" / "cifar10").mkdir(parents=True)
    with tarfile.open(tmp_path / "data" / "cifar10" / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(source / "cifar10" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    raw = DATASETS["cifar10"].load(tmp_path / "data")
    assert raw.x_train.shape == (15, 3, 32, 32)


@pytest.mark.parametrize("filter_api", [True, False])
def test_cifar_tarball_cannot_escape_its_folder(tmp_path, monkeypatch, filter_api):
    if not filter_api:  # the member check used on Pythons without tarfile's extraction filters
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    evil = tmp_path / "evil.txt"
    evil.write_text("x")
    (tmp_path / "data" / "cifar10").mkdir(parents=True)
    with tarfile.open(tmp_path / "data" / "cifar10" / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(evil, arcname="../../escaped.txt")
    with pytest.raises(SddError, match="could not be unpacked"):
        DATASETS["cifar10"].load(tmp_path / "data")
    assert not (tmp_path / "escaped.txt").exists()


def test_cifar100_fine_labels_and_coarse_check(tmp_path):
    data, labels = write_cifar100(tmp_path)
    raw = DATASETS["cifar100"].load(tmp_path)
    assert raw.num_classes == 100 and raw.y_train.tolist() == labels[:5]
    assert np.array_equal(raw.x_test.reshape(5, -1).numpy(), data[5:])
    bad = tmp_path / "bad"
    write_cifar100(bad, coarse_offset=1)
    with pytest.raises(SddError, match="coarse"):
        DATASETS["cifar100"].load(bad)


class _Exploit:
    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (str(self.target),))


def test_cifar_reader_refuses_code_and_object_arrays(tmp_path):
    write_cifar10(tmp_path)
    batch = tmp_path / "cifar10" / "cifar-10-batches-py" / "data_batch_1"
    with open(batch, "wb") as handle:
        pickle.dump({b"data": _Exploit(tmp_path / "pwned"), b"labels": []}, handle, protocol=2)
    with pytest.raises(SddError, match="not allowed"):
        DATASETS["cifar10"].load(tmp_path)
    assert not (tmp_path / "pwned").exists()
    dump(batch, {b"data": np.array([[1, "a"]], dtype=object), b"labels": [0]})
    with pytest.raises(SddError, match="object arrays"):
        DATASETS["cifar10"].load(tmp_path)


def test_cifar_bad_labels_are_reported(tmp_path):
    write_cifar10(tmp_path)
    batch = tmp_path / "cifar10" / "cifar-10-batches-py" / "data_batch_3"
    dump(batch, {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]})
    with pytest.raises(SddError, match="labels in"):
        DATASETS["cifar10"].load(tmp_path)


# -- asymmetric noise maps -----------------------------------------------------------------------------
def test_asymmetric_maps():
    assert DATASETS["mnist"].asymmetric == {2: 7, 3: 8, 5: 6, 6: 5}
    assert DATASETS["cifar10"].asymmetric == {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}
    assert DATASETS["fashion-mnist"].asymmetric is None
    mapping = DATASETS["cifar100"].asymmetric
    assert mapping == cifar100_asymmetric() and sorted(mapping) == list(range(100))
    assert sorted(mapping.values()) == list(range(100))  # a permutation
    assert all(CIFAR100_COARSE[f] == CIFAR100_COARSE[t] and f != t for f, t in mapping.items())
    # fruit and vegetables (coarse 4): apple 0, mushroom 51, orange 53, pear 57, sweet pepper 83
    assert [mapping[f] for f in (0, 51, 53, 57, 83)] == [51, 53, 57, 83, 0]
    for start in range(100):  # every class returns to itself after 5 steps
        cls = start
        for _ in range(5):
            cls = mapping[cls]
        assert cls == start
    assert sorted(CIFAR100_COARSE.count(c) for c in range(20)) == [5] * 20
    assert cifar100_asymmetric_official_code()[4] == 0 and cifar100_asymmetric_official_code()[0] == 1


# -- Tiny ImageNet ---------------------------------------------------------------------------------------
def colour(label: int) -> tuple[int, int, int]:
    return (label % 256, 255 - label % 256, 40 + (label * 7) % 180)


def write_jpeg(path: Path, rgb: tuple[int, int, int], grey: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (64, 64), rgb)
    (image.convert("L") if grey else image).save(path, "JPEG", quality=95)


def write_tiny_archive(root: Path, num_classes: int, val_per_class: int = 1) -> list[str]:
    """The official layout: train/<wnid>/images/*.JPEG, val/images/ + val_annotations.txt, test/."""
    wnids = [f"n{9_000_000 - 37 * c:08d}" for c in range(num_classes)]  # created out of sorted order
    labels = {wnid: k for k, wnid in enumerate(sorted(wnids))}
    lines = []
    for wnid in wnids:
        for k in range(2):
            write_jpeg(root / "train" / wnid / "images" / f"{wnid}_{k}.JPEG", colour(labels[wnid]))
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for _ in range(val_per_class):
            name = f"val_{len(lines)}.JPEG"
            write_jpeg(root / "val" / "images" / name, colour(labels[wnid]))
            lines.append(f"{name}\t{wnid}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    write_jpeg(root / "test" / "images" / "test_0.JPEG", (0, 0, 0))
    return sorted(wnids)


def assert_colours(x: torch.Tensor, y: torch.Tensor) -> None:
    expected = torch.tensor([colour(int(label)) for label in y], dtype=torch.float32)
    assert (x.float().mean(dim=(2, 3)) - expected).abs().max() < 4  # JPEG of a flat colour


def test_reorganise_and_load_tiny_imagenet(tmp_path):
    wnids = write_tiny_archive(tmp_path / "tiny-imagenet-200", 3, val_per_class=2)
    first = tmp_path / "tiny-imagenet-200" / "train" / wnids[0] / "images" / f"{wnids[0]}_0.JPEG"
    write_jpeg(first, colour(0), grey=True)  # a greyscale file, as some official images are
    counts = reorganise_tiny_imagenet(tmp_path / "tiny-imagenet-200", tmp_path / "out")
    assert counts == {"train": 6, "val": 6}
    assert sorted(p.name for p in (tmp_path / "out" / "train").iterdir()) == wnids
    linked = tmp_path / "out" / "train" / wnids[0] / f"{wnids[0]}_0.JPEG"
    assert os.path.samefile(linked, first)
    assert len(list((tmp_path / "out" / "val" / wnids[1]).glob("*.JPEG"))) == 2
    assert reorganise_tiny_imagenet(tmp_path / "tiny-imagenet-200", tmp_path / "out") == counts  # re-runnable
    raw = load_tiny_imagenet(tmp_path / "out", num_classes=3)
    assert raw.x_train.shape == (6, 3, 64, 64) and raw.x_train.dtype == torch.uint8
    assert raw.y_train.tolist() == [0, 0, 1, 1, 2, 2] and raw.y_test.tolist() == [0, 0, 1, 1, 2, 2]
    assert_colours(raw.x_train[1:], raw.y_train[1:])
    assert_colours(raw.x_test, raw.y_test)
    grey = raw.x_train[0].float()
    assert (grey[0] - grey[1]).abs().max() == 0 and (grey[1] - grey[2]).abs().max() == 0  # grey -> RGB
    with pytest.raises(DatasetMissing, match="expected 200"):
        load_tiny_imagenet(tmp_path / "out")


def test_tiny_imagenet_in_place_reorganisation(tmp_path):
    write_tiny_archive(tmp_path, 2)
    raw = load_tiny_imagenet(tmp_path, num_classes=2)
    assert raw.x_train.shape == (4, 3, 64, 64) and raw.y_test.tolist() == [0, 1]


def test_tiny_imagenet_registered_set(tmp_path):
    """200 classes unzipped at data/tiny-imagenet/tiny-imagenet-200: reorganised on first use, then loaded."""
    write_tiny_archive(tmp_path / "tiny-imagenet" / "tiny-imagenet-200", 200)
    spec = DATASETS["tiny-imagenet"]
    raw = spec.load(tmp_path)
    assert raw.x_train.shape == (400, 3, 64, 64) and raw.x_test.shape == (200, 3, 64, 64)
    assert raw.num_classes == spec.num_classes == 200 and spec.input_shape == (3, 32, 32)
    assert_colours(raw.x_test, raw.y_test)
    batch = spec.train_transform(raw.x_train[:16], torch.Generator().manual_seed(0))
    assert batch.shape == (16, 3, 32, 32) and batch.dtype == torch.float32
    test = spec.eval_transform(raw.x_test[:16])
    flat = (torch.tensor([colour(int(v)) for v in raw.y_test[:16]]).float() / 255 - torch.tensor(IMAGENET[0])) / (
        torch.tensor(IMAGENET[1])
    )
    assert (test.mean(dim=(2, 3)) - flat).abs().max() < 0.1


def no_chained_traceback(error: BaseException) -> bool:
    return error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


# -- missing data sets ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "folder"),
    [("mnist", "mnist"), ("fashion-mnist", "fashion-mnist"), ("cifar10", "cifar10"), ("cifar100", "cifar100")]
    + [("tiny-imagenet", "tiny-imagenet")],
)
def test_missing_dataset_is_one_line(tmp_path, name, folder, monkeypatch):
    monkeypatch.setattr(sddlab.data.vision, "SYSTEM_COPIES", {})  # no system-wide copy either (Debian's package)
    with pytest.raises(DatasetMissing) as info:
        DATASETS[name].load(tmp_path)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / folder) in message
    assert no_chained_traceback(info.value)


@pytest.mark.parametrize("name", ["mnist", "cifar100"])
def test_failed_download_is_one_line(tmp_path, monkeypatch, name):
    monkeypatch.delenv("SDDLAB_NO_DOWNLOAD")

    def refuse(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://..., got:\n<urlopen error>")

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", refuse)
    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", offline)
    with pytest.raises(DatasetMissing, match="download failed") as info:
        DATASETS[name].load(tmp_path)
    assert "\n" not in str(info.value) and no_chained_traceback(info.value)


# -- transforms on known images ------------------------------------------------------------------------
def images(n: int = 6, size: int = 32, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=generator, dtype=torch.uint8)


def test_flip():
    x = images()
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(augment.random_flip(x, generator, p=1.0), torch.flip(x, dims=[3]))
    assert torch.equal(augment.random_flip(x, generator, p=0.0), x)
    mixed = augment.random_flip(images(64), generator)
    flipped = [torch.equal(out, torch.flip(img, [2])) for out, img in zip(mixed, images(64), strict=True)]
    kept = [torch.equal(out, img) for out, img in zip(mixed, images(64), strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True)) and 10 < sum(flipped) < 54


def test_crop_with_known_offsets():
    x = images(3)
    padded = F.pad(x, (4, 4, 4, 4))
    top, left = torch.tensor([0, 4, 8]), torch.tensor([8, 4, 1])
    out = augment.crop_at(x, top, left, 32, padding=4)
    assert torch.equal(out[1], x[1])  # offset (4, 4) is the unshifted image
    for k in range(3):
        assert torch.equal(out[k], padded[k, :, top[k] : top[k] + 32, left[k] : left[k] + 32])
    assert (out[0, :, :4] == 0).all() and (out[0, :, :, -4:] == 0).all()  # zero padding


def test_random_crop_draws_offsets_in_range_and_is_seeded():
    x = images(40)
    padded = F.pad(x, (4, 4, 4, 4))
    out = augment.random_crop(x, torch.Generator().manual_seed(1), 32, 4)
    again = augment.random_crop(x, torch.Generator().manual_seed(1), 32, 4)
    assert torch.equal(out, again)
    offsets = set()
    for k in range(40):
        hits = [(i, j) for i in range(9) for j in range(9) if torch.equal(out[k], padded[k, :, i : i + 32, j : j + 32])]
        assert hits
        offsets.add(hits[0])
    assert len(offsets) > 20


def test_cifar_transforms_range_and_normalisation():
    x = images(8)
    spec = DATASETS["cifar10"]
    train = spec.train_transform(x, torch.Generator().manual_seed(0))
    assert train.shape == (8, 3, 32, 32) and train.dtype == torch.float32
    low = (0 - torch.tensor(IMAGENET[0])) / torch.tensor(IMAGENET[1])
    high = (1 - torch.tensor(IMAGENET[0])) / torch.tensor(IMAGENET[1])
    per_channel = train.transpose(0, 1).reshape(3, -1)
    assert (per_channel.min(1).values >= low - 1e-6).all() and (per_channel.max(1).values <= high + 1e-6).all()
    expected = TF.normalize(x.float() / 255, list(IMAGENET[0]), list(IMAGENET[1]))
    assert torch.allclose(spec.eval_transform(x), expected, atol=1e-6)


def test_random_resized_crop_boxes():
    generator = torch.Generator().manual_seed(0)
    boxes = augment.random_resized_crop_boxes(2000, 64, 64, generator).float()
    top, left, h, w = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 64).all() and (left + w <= 64).all()
    area = h * w / 64**2
    assert area.min() > 0.06 and area.max() <= 1 and area.mean() > 0.3
    ratio = w / h
    assert ratio.min() > 0.7 and ratio.max() < 1.45
    same = augment.random_resized_crop_boxes(2000, 64, 64, torch.Generator().manual_seed(0)).float()
    assert torch.equal(boxes, same)
    fallback = augment.random_resized_crop_boxes(5, 64, 64, generator, scale=(2.0, 3.0))
    assert fallback.tolist() == [[0, 0, 64, 64]] * 5


def test_resized_crop_on_known_boxes():
    x = images(2, size=64)
    xf = x.float() / 255
    exact = augment.resized_crop(x, torch.tensor([[3, 20, 32, 32], [0, 0, 32, 32]]), 32)
    assert torch.allclose(exact[0], xf[0, :, 3:35, 20:52], atol=1e-6)
    assert torch.allclose(exact[1], xf[1, :, :32, :32], atol=1e-6)
    halved = augment.resized_crop(x, torch.tensor([[0, 0, 64, 64]] * 2), 32)
    assert torch.allclose(halved, F.avg_pool2d(xf, 2), atol=1e-6)  # area filter when shrinking
    box = (5, 7, 20, 24)  # enlarging: bilinear as torchvision, apart from the outermost pixels
    ours = augment.resized_crop(x, torch.tensor([box] * 2), 32)
    reference = TF.resized_crop(xf, *box, size=[32, 32], antialias=False)
    assert torch.allclose(ours[..., 1:-1, 1:-1], reference[..., 1:-1, 1:-1], atol=1e-5)


def test_tiny_imagenet_eval_matches_torchvision():
    x = images(3, size=64)
    ours = augment.resize_center_crop(x, 45, 32)
    reference = TF.center_crop(TF.resize(x.float() / 255, [45], antialias=True), [32])
    assert ours.shape == (3, 3, 32, 32) and torch.allclose(ours, reference, atol=1e-6)
