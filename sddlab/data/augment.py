"""Batch-level image transforms run on the device: uint8 NCHW in, normalised float NCHW out.

No per-sample Python and no PIL: every random draw is a tensor op on the passed `torch.Generator`
(which must live on the batch's device), so one seeded stream fixes the whole augmentation.

Normalisation constants (the paper's code, an OpenLTH fork):
- MNIST and Fashion-MNIST: mean 0.1307, std 0.3081 (MNIST's statistics), no augmentation.
- CIFAR-10/100 and Tiny ImageNet: ImageNet mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
Augmentation: CIFAR random crop 32 with 4 zero pixels of padding + horizontal flip (p = 0.5);
Tiny ImageNet RandomResizedCrop(32) (scale 0.08-1, ratio 3/4-4/3) + flip; tested at Resize(45) +
CenterCrop(32).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

MNIST_MEAN = (0.1307,)
MNIST_STD = (0.3081,)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to float32 in [0, 1]; float input is returned unchanged."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x


@functools.lru_cache(maxsize=32)
def _affine(
    mean: tuple[float, ...], std: tuple[float, ...], from_uint8: bool, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) with normalised = x * scale - shift; uint8 pixels are divided by 255 in the scale."""
    std_t = torch.tensor(std, dtype=torch.float64)
    mean_t = torch.tensor(mean, dtype=torch.float64)
    scale = 1.0 / (std_t * (255.0 if from_uint8 else 1.0))
    shift = mean_t / std_t
    return (scale.float().view(1, -1, 1, 1).to(device), shift.float().view(1, -1, 1, 1).to(device))


def normalise(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Per-channel (x / 255 - mean) / std of a uint8 batch ((x - mean) / std of a float one).

    Computed as one multiply and one subtract in place (x * scale - shift): a single float copy of the
    batch instead of three, equal to the textbook form to within float rounding (~1e-7).
    """
    from_uint8 = x.dtype == torch.uint8
    scale, shift = _affine(tuple(mean), tuple(std), from_uint8, x.device)
    return (x.float().mul_(scale) if from_uint8 else x * scale).sub_(shift)


def crop_at(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: int, padding: int = 0) -> torch.Tensor:
    """Crop `size`×`size` from each image, at per-sample offsets into the zero-padded image."""
    if padding:
        x = F.pad(x, (padding, padding, padding, padding))
    span = torch.arange(size, device=x.device)
    rows = (top.view(-1, 1) + span).view(-1, size, 1)
    cols = (left.view(-1, 1) + span).view(-1, 1, size)
    batch = torch.arange(x.shape[0], device=x.device).view(-1, 1, 1)
    # advanced indices around a slice put the indexed dims first: (N, size, size, C)
    return x[batch, :, rows, cols].permute(0, 3, 1, 2).contiguous()


def random_crop(x: torch.Tensor, generator: torch.Generator, size: int, padding: int) -> torch.Tensor:
    """torchvision's RandomCrop(size, padding) with zero fill, an independent offset per image."""
    n, _, height, width = x.shape
    top = torch.randint(0, height + 2 * padding - size + 1, (n,), generator=generator, device=x.device)
    left = torch.randint(0, width + 2 * padding - size + 1, (n,), generator=generator, device=x.device)
    return crop_at(x, top, left, size, padding)


def random_flip(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Flip each image left-right with probability p."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < p
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def random_resized_crop_boxes(
    n: int,
    height: int,
    width: int,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    attempts: int = 10,
) -> torch.Tensor:
    """Per-image crop boxes (top, left, h, w) drawn as torchvision's RandomResizedCrop, all at once.

    Each image gets `attempts` candidate boxes; the first that fits is kept, else the centre fallback.
    """
    device = generator.device
    area = height * width
    target = area * (scale[0] + (scale[1] - scale[0]) * torch.rand(n, attempts, generator=generator, device=device))
    low, high = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(low + (high - low) * torch.rand(n, attempts, generator=generator, device=device))
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    top = torch.floor(torch.rand(n, attempts, generator=generator, device=device) * (height - h + 1))
    left = torch.floor(torch.rand(n, attempts, generator=generator, device=device) * (width - w + 1))
    first = fits.int().argmax(dim=1, keepdim=True)
    boxes = torch.cat([v.gather(1, first) for v in (top, left, h, w)], dim=1)

    # fallback (no attempt fits): the largest centred box whose aspect ratio is clamped to `ratio`
    in_ratio = width / height
    if in_ratio < min(ratio):
        fw, fh = width, round(width / min(ratio))
    elif in_ratio > max(ratio):
        fw, fh = round(height * max(ratio)), height
    else:
        fw, fh = width, height
    fallback = torch.tensor([(height - fh) // 2, (width - fw) // 2, fh, fw], dtype=boxes.dtype, device=device)
    boxes = torch.where(fits.any(dim=1, keepdim=True), boxes, fallback)
    return boxes.long()


def resized_crop(x: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Crop box (top, left, h, w) of each image and resize it to size×size, bilinearly.

    roi_align with `aligned=True` samples at pixel centres; its adaptive sampling grid averages
    ceil(box/size) samples per output pixel, i.e. an area filter when shrinking (antialiasing).
    """
    from torchvision.ops import roi_align  # deferred: importing torchvision takes a second

    x = to_float(x)
    boxes = boxes.to(device=x.device, dtype=x.dtype)
    top, left, h, w = boxes.unbind(1)
    index = torch.arange(x.shape[0], device=x.device, dtype=x.dtype)
    rois = torch.stack([index, left, top, left + w, top + h], dim=1)
    return roi_align(x, rois, output_size=(size, size), spatial_scale=1.0, sampling_ratio=-1, aligned=True)


def resize_center_crop(x: torch.Tensor, resize: int, crop: int) -> torch.Tensor:
    """torchvision's Resize(resize) (shorter side, antialiased bilinear) then CenterCrop(crop)."""
    x = to_float(x)
    height, width = x.shape[-2:]
    if height <= width:
        new_h, new_w = resize, int(resize * width / height)
    else:
        new_h, new_w = int(resize * height / width), resize
    x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)
    top, left = int(round((new_h - crop) / 2)), int(round((new_w - crop) / 2))
    return x[..., top : top + crop, left : left + crop].contiguous()


# -- per-dataset transforms, in the DatasetSpec signatures ------------------------------------------
def mnist_train(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """MNIST / Fashion-MNIST training batch: no augmentation, just normalisation."""
    return mnist_eval(x)


def mnist_eval(x: torch.Tensor) -> torch.Tensor:
    """MNIST / Fashion-MNIST evaluation batch."""
    return normalise(x, MNIST_MEAN, MNIST_STD)


def cifar_train(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """CIFAR training batch: random crop 32 (padding 4), flip, ImageNet normalisation."""
    x = random_flip(random_crop(x, generator, 32, 4), generator)
    return normalise(x, IMAGENET_MEAN, IMAGENET_STD)


def cifar_eval(x: torch.Tensor) -> torch.Tensor:
    """CIFAR evaluation batch: ImageNet normalisation only."""
    return normalise(x, IMAGENET_MEAN, IMAGENET_STD)


def tiny_imagenet_train(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Tiny ImageNet training batch: RandomResizedCrop(32), flip, ImageNet normalisation."""
    boxes = random_resized_crop_boxes(x.shape[0], x.shape[2], x.shape[3], generator)
    x = random_flip(resized_crop(x, boxes, 32), generator)
    return normalise(x, IMAGENET_MEAN, IMAGENET_STD)


def tiny_imagenet_eval(x: torch.Tensor) -> torch.Tensor:
    """Tiny ImageNet evaluation batch: Resize(45), CenterCrop(32), ImageNet normalisation."""
    return normalise(resize_center_crop(x, 45, 32), IMAGENET_MEAN, IMAGENET_STD)
