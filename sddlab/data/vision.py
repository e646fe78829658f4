"""Image data sets by name: MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100 and Tiny ImageNet.

Images stay uint8 NCHW (MNIST 1×28×28, CIFAR 3×32×32, Tiny ImageNet 3×64×64); scaling, normalisation
and augmentation run per batch on the device (sddlab.data.augment). Normalisation, as the paper's code:
MNIST and Fashion-MNIST mean 0.1307, std 0.3081; CIFAR-10/100 and Tiny ImageNet ImageNet mean
(0.485, 0.456, 0.406), std (0.229, 0.224, 0.225). Files live under <data_dir>/<name>/ in torchvision's
layouts; a missing set is downloaded through torchvision unless SDDLAB_NO_DOWNLOAD is set, and failing
that DatasetMissing says in one line what to put where. CIFAR batches are read by sddlab.data.cifar
(restricted unpickling, no md5 requirement); see its docstring.
"""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import torch

from sddlab.data import augment
from sddlab.data import idx
from sddlab.data.cifar import (
    CIFAR10_ASYMMETRIC,
    cifar100_asymmetric,
    cifar100_asymmetric_official_code,
    read_images,
)
from sddlab.data.registry import DatasetSpec, RawData, register_dataset
from sddlab.data.tabular import MNIST_ASYMMETRIC
from sddlab.data.tinyimagenet import load_tiny_imagenet
from sddlab.errors import DatasetMissing, SddError

NO_DOWNLOAD_ENV = "SDDLAB_NO_DOWNLOAD"


def downloads_allowed() -> bool:
    """False when the environment variable SDDLAB_NO_DOWNLOAD is set to anything but 0/false/no."""
    return os.environ.get(NO_DOWNLOAD_ENV, "").strip().lower() in ("", "0", "false", "no")


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return (lines[0] if lines else type(error).__name__)[:200]


def _fetch(hint: str, download: Callable[[], object]) -> None:
    """Run a torchvision download; any failure becomes DatasetMissing carrying `hint` on one line."""
    if not downloads_allowed():
        raise DatasetMissing(f"{hint} (downloads are off: {NO_DOWNLOAD_ENV} is set)")
    try:
        download()
    except Exception as error:  # network, mirror, checksum or disk errors all mean "not available"
        raise DatasetMissing(f"{hint} (download failed: {_first_line(error)})") from None


# -- MNIST and Fashion-MNIST (torchvision reads the IDX files) --------------------------------------
def _load_idx_set(name: str, class_name: str, data_dir: Path) -> RawData:
    import torchvision.datasets

    cls = getattr(torchvision.datasets, class_name)
    root = Path(data_dir) / name
    raw = root / class_name / "raw"
    packed = [filename for filename, _ in cls.resources]
    files = ", ".join(packed)
    hint = f"{name} not found under {root}: put {files} in {raw}/, or run with internet to download them"
    for filename in packed:  # torchvision reads the unpacked files; unpack any .gz put there by hand
        target, source = raw / filename.removesuffix(".gz"), raw / filename
        if not target.exists() and source.is_file():
            with gzip.open(source) as src, open(target.with_suffix(".partial"), "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(target.with_suffix(".partial"), target)
    if not all((raw / filename.removesuffix(".gz")).is_file() for filename in packed):
        system = _system_copy(name, packed)
        if system is not None:
            return _read_system_copy(name, system)
        if name in SYSTEM_COPIES:
            hint += f", or install it system-wide: {SYSTEM_COPIES[name][1]}"
        _fetch(hint, lambda: cls(str(root), train=True, download=True))
    try:
        train, test = cls(str(root), train=True), cls(str(root), train=False)
    except (RuntimeError, ValueError, TypeError, OSError) as error:
        raise SddError(f"{name} under {raw} is unreadable: {_first_line(error)}") from None
    for split in (train, test):
        if len(split.data) != len(split.targets) or bool((split.targets >= 10).any()):
            raise SddError(f"{name} under {raw}: image and label files disagree (counts, or labels outside 0-9)")
    return RawData(
        train.data.unsqueeze(1).contiguous(),
        train.targets.long(),
        test.data.unsqueeze(1).contiguous(),
        test.targets.long(),
        num_classes=10,
    )


# Read-only copies installed by the system's package manager, read in place when data/ has none.
SYSTEM_COPIES: dict[str, tuple[list[Path], str]] = {
    "fashion-mnist": ([Path("/usr/share/datasets/fashion-mnist")], "sudo apt-get install dataset-fashion-mnist"),
}


def _system_copy(name: str, packed: list[str]) -> Path | None:
    """The first system folder holding all of a set's IDX files (gzipped as the torchvision names say), if any."""
    folders, _ = SYSTEM_COPIES.get(name, ([], ""))
    return next((folder for folder in folders if all((folder / f).is_file() for f in packed)), None)


IDX_SETS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}  # data set name -> torchvision class and folder


def idx_set_on_disk(name: str, data_dir: Path) -> bool:
    """Whether an MNIST-format set reads without a download: its IDX files (gzipped or not) under
    <data_dir>/<name>/<Class>/raw/, or a system copy such as Debian's dataset-fashion-mnist."""
    import torchvision.datasets

    class_name = IDX_SETS[name]
    packed = [filename for filename, _ in getattr(torchvision.datasets, class_name).resources]
    raw = Path(data_dir) / name / class_name / "raw"
    own = all((raw / f).is_file() or (raw / f.removesuffix(".gz")).is_file() for f in packed)
    return own or _system_copy(name, packed) is not None


def _read_system_copy(name: str, folder: Path) -> RawData:
    """Read the four IDX .gz files of an MNIST-format set in place (no copy, no unpacking to disk)."""
    def tensor(filename: str) -> torch.Tensor:
        return torch.from_numpy(idx.read_idx(folder / filename).copy())

    x_train, y_train = tensor("train-images-idx3-ubyte.gz"), tensor("train-labels-idx1-ubyte.gz").long()
    x_test, y_test = tensor("t10k-images-idx3-ubyte.gz"), tensor("t10k-labels-idx1-ubyte.gz").long()
    for images, labels in ((x_train, y_train), (x_test, y_test)):
        if images.ndim != 3 or len(images) != len(labels) or bool((labels >= 10).any()):
            raise SddError(f"{name} under {folder}: image and label files disagree (counts, shape or labels)")
    return RawData(x_train.unsqueeze(1).contiguous(), y_train, x_test.unsqueeze(1).contiguous(), y_test, 10)


def load_mnist(data_dir: Path) -> RawData:
    """MNIST from <data_dir>/mnist/MNIST/raw/ (IDX files, gzipped or not)."""
    return _load_idx_set("mnist", "MNIST", data_dir)


def load_fashion_mnist(data_dir: Path) -> RawData:
    """Fashion-MNIST from <data_dir>/fashion-mnist/FashionMNIST/raw/ (IDX files, gzipped or not), else read in
    place from Debian's `dataset-fashion-mnist` package (/usr/share/datasets/fashion-mnist/)."""
    return _load_idx_set("fashion-mnist", "FashionMNIST", data_dir)


def _extract(archive: Path, root: Path) -> None:
    """Unpack a tar archive into `root`, refusing links and paths that leave it."""
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
            tar.extractall(root, filter="data")
            return
        base = root.resolve()
        for member in tar.getmembers():
            inside = (base / member.name).resolve().is_relative_to(base)
            if not inside or not (member.isfile() or member.isdir()):
                raise tarfile.TarError(f"{archive}: refusing to unpack {member.name}")
        tar.extractall(root)


# -- CIFAR-10 and CIFAR-100 (official python batches, read by sddlab.data.cifar) -----------------------
def _load_cifar(name: str, class_name: str, label_key: str, num_classes: int, data_dir: Path) -> RawData:
    import torchvision.datasets
    import torchvision.datasets.utils as tv_utils

    cls = getattr(torchvision.datasets, class_name)
    root = Path(data_dir) / name
    folder = root / cls.base_folder
    train_files = [folder / filename for filename, _ in cls.train_list]
    test_files = [folder / filename for filename, _ in cls.test_list]
    hint = (
        f"{name} not found under {root}: put {cls.filename} or its {cls.base_folder}/ there, "
        "or run with internet to download it"
    )
    archive = root / cls.filename
    if not all(path.is_file() for path in train_files + test_files):
        if archive.is_file():
            try:
                _extract(archive, root)
            except (tarfile.TarError, OSError) as error:
                raise SddError(f"{archive} could not be unpacked: {_first_line(error)}") from None
        else:
            _fetch(
                hint,
                lambda: tv_utils.download_and_extract_archive(cls.url, str(root), None, cls.filename, cls.tgz_md5),
            )
        if not all(path.is_file() for path in train_files + test_files):
            raise DatasetMissing(hint)
    try:
        x_train, y_train = read_images(train_files, label_key, num_classes)
        x_test, y_test = read_images(test_files, label_key, num_classes)
    except (ValueError, pickle.UnpicklingError, EOFError, OSError) as error:
        raise SddError(f"{name} under {folder} is unreadable: {_first_line(error)}") from None
    as_tensor = torch.from_numpy
    return RawData(as_tensor(x_train), as_tensor(y_train), as_tensor(x_test), as_tensor(y_test), num_classes)


def load_cifar10(data_dir: Path) -> RawData:
    """CIFAR-10 from <data_dir>/cifar10/cifar-10-batches-py/ (or its .tar.gz in <data_dir>/cifar10/)."""
    return _load_cifar("cifar10", "CIFAR10", "labels", 10, data_dir)


def load_cifar100(data_dir: Path) -> RawData:
    """CIFAR-100 (fine labels) from <data_dir>/cifar100/cifar-100-python/ (or its .tar.gz)."""
    return _load_cifar("cifar100", "CIFAR100", "fine_labels", 100, data_dir)


def load_tiny(data_dir: Path) -> RawData:
    """Tiny ImageNet from <data_dir>/tiny-imagenet/ (class folders, or the unzipped official archive)."""
    return load_tiny_imagenet(Path(data_dir) / "tiny-imagenet")


# -- registry entries ------------------------------------------------------------------------------------
def _register(
    name: str,
    description: str,
    load: Callable[[Path], RawData],
    num_classes: int,
    input_shape: tuple[int, ...],
    asymmetric: dict[int, int] | None,
    transforms: tuple[Callable, Callable],
    asymmetric_official: dict[int, int] | None = None,
) -> None:
    register_dataset(
        DatasetSpec(
            name=name,
            description=description,
            load=load,
            num_classes=num_classes,
            input_shape=input_shape,
            asymmetric=asymmetric,
            asymmetric_official=asymmetric_official,
            train_transform=transforms[0],
            eval_transform=transforms[1],
        )
    )


_MNIST = {"transforms": (augment.mnist_train, augment.mnist_eval)}
_CIFAR = {"transforms": (augment.cifar_train, augment.cifar_eval)}
_TINY = {"transforms": (augment.tiny_imagenet_train, augment.tiny_imagenet_eval)}

_register("mnist", "MNIST digits, 60k/10k, 1x28x28", load_mnist, 10, (1, 28, 28), MNIST_ASYMMETRIC, **_MNIST)
_register("fashion-mnist", "Fashion-MNIST, 60k/10k, 1x28x28", load_fashion_mnist, 10, (1, 28, 28), None, **_MNIST)
_register("cifar10", "CIFAR-10, 50k/10k, 3x32x32", load_cifar10, 10, (3, 32, 32), CIFAR10_ASYMMETRIC, **_CIFAR)
_register(
    "cifar100",
    "CIFAR-100 (fine labels), 50k/10k, 3x32x32",
    load_cifar100,
    100,
    (3, 32, 32),
    cifar100_asymmetric(),
    **_CIFAR,
    asymmetric_official=cifar100_asymmetric_official_code(),
)
_register(
    "tiny-imagenet",
    "Tiny ImageNet, 200 classes, 100k/10k (val), 64x64 stored, trained at 32x32",
    load_tiny,
    200,
    (3, 32, 32),
    None,
    **_TINY,
)
