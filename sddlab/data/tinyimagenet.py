"""Tiny ImageNet (200 classes, 64×64 RGB): reorganise the official archive into class folders, load it.

The official tiny-imagenet-200.zip holds train/<wnid>/images/*.JPEG, val/images/*.JPEG labelled by
val/val_annotations.txt (tab-separated: file, wnid, box) and an unlabelled test/ (unused). The loader
reads class folders <root>/train/<wnid>/*.JPEG and <root>/val/<wnid>/*.JPEG; labels index the sorted
training wnids, as in the paper's code, and the labelled val split serves as the test set.
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sddlab.data.registry import RawData
from sddlab.errors import DatasetMissing, SddError

NUM_CLASSES = 200
IMAGE_SIZE = 64
OFFICIAL_FOLDER = "tiny-imagenet-200"
URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
_DONE = ".reorganised.json"


def missing_message(root: Path) -> str:
    """The one-line hint shown when no usable Tiny ImageNet is under `root`."""
    return (
        f"tiny-imagenet not found under {root}: unzip {URL} there (its train/ and val/ folders are "
        f"reorganised into class folders on first use), or put class folders train/<wnid>/*.JPEG and "
        f"val/<wnid>/*.JPEG there"
    )


def _place(source: Path, target: Path) -> None:
    """Hard-link `source` at `target` (copy where links are impossible); an existing target is kept."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        partial = target.with_name(target.name + ".partial")
        shutil.copyfile(source, partial)
        os.replace(partial, target)


def reorganise_tiny_imagenet(archive_root: Path, out_root: Path) -> dict[str, int]:
    """Turn an unzipped tiny-imagenet-200 folder into class folders under `out_root`; returns image counts.

    Files are hard-linked (copied across file systems); re-running skips what is there, and
    `out_root` may be `archive_root` itself. A marker file records completion.
    """
    archive_root, out_root = Path(archive_root), Path(out_root)
    train_dir = archive_root / "train"
    annotations = archive_root / "val" / "val_annotations.txt"
    if not train_dir.is_dir() or not annotations.is_file():
        raise DatasetMissing(
            f"{archive_root} is not an unzipped tiny-imagenet-200 folder: it needs train/<wnid>/images/ "
            f"and val/val_annotations.txt"
        )
    counts = {"train": 0, "val": 0}
    for class_dir in sorted(path for path in train_dir.iterdir() if path.is_dir()):
        images = class_dir / "images"
        for image in sorted((images if images.is_dir() else class_dir).glob("*.JPEG")):
            _place(image, out_root / "train" / class_dir.name / image.name)
            counts["train"] += 1
    for line in annotations.read_text().splitlines():
        fields = line.strip().split("\t")
        if len(fields) < 2:
            continue
        name, wnid = fields[0], fields[1]
        source = archive_root / "val" / "images" / name
        if not source.is_file():
            raise DatasetMissing(f"{source} is listed in {annotations} but missing: unzip the archive again")
        _place(source, out_root / "val" / wnid / name)
        counts["val"] += 1
    (out_root / _DONE).write_text(json.dumps(counts))
    return counts


def _prepare(root: Path) -> None:
    """Reorganise an official archive found at root/tiny-imagenet-200 or at root itself, once."""
    if (root / _DONE).exists():
        return
    for candidate in (root / OFFICIAL_FOLDER, root):
        if (candidate / "val" / "val_annotations.txt").is_file():
            reorganise_tiny_imagenet(candidate, root)
            return


def _class_files(split_dir: Path) -> dict[str, list[Path]]:
    if not split_dir.is_dir():
        return {}
    # "images" is the official (flat) val folder when an archive was reorganised in place
    folders = [path for path in split_dir.iterdir() if path.is_dir() and path.name != "images"]
    found = {path.name: sorted(path.glob("*.JPEG")) for path in folders}
    return {wnid: files for wnid, files in sorted(found.items()) if files}


def _read_image(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    if pixels.shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise SddError(f"{path} is {pixels.shape[1]}×{pixels.shape[0]}, Tiny ImageNet images are 64×64")
    return pixels


def _read_split(files: dict[str, list[Path]], index: dict[str, int]) -> tuple[torch.Tensor, torch.Tensor]:
    paths = [path for wnid in files for path in files[wnid]]
    labels = torch.tensor([index[wnid] for wnid in files for _ in files[wnid]], dtype=torch.int64)
    images = np.empty((len(paths), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for k, pixels in enumerate(pool.map(_read_image, paths)):
            images[k] = pixels
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), labels


def load_tiny_imagenet(root: Path, num_classes: int = NUM_CLASSES) -> RawData:
    """Tiny ImageNet as uint8 NCHW 64×64 tensors: the train split, and the labelled val split as test."""
    root = Path(root)
    _prepare(root)
    train, val = _class_files(root / "train"), _class_files(root / "val")
    if not train or not val:
        raise DatasetMissing(missing_message(root))
    if len(train) != num_classes:
        raise DatasetMissing(f"{root / 'train'} has {len(train)} classes, expected {num_classes}: {URL}")
    unknown = sorted(set(val) - set(train))
    if unknown:
        raise DatasetMissing(f"{root / 'val'} has classes not in train/ ({', '.join(unknown[:3])}): {URL}")
    index = {wnid: k for k, wnid in enumerate(train)}
    x_train, y_train = _read_split(train, index)
    x_test, y_test = _read_split(val, index)
    return RawData(x_train, y_train, x_test, y_test, num_classes=num_classes)
