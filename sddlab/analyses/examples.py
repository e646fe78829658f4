"""Which noisy examples are memorised, and when: the curve explained example by example.

Every level stores each training example's predicted class (`RunStore.save_predictions`); read against
the run's noisy and true labels they say at which sparsity each noisy label stops being fitted and
whether clean examples are forgotten at the collapse.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sddlab.data.registry import DatasetSpec
from sddlab.store import RunStore


def prediction_matrix(run_dir: str | Path, split: str = "train") -> tuple[pd.DataFrame, np.ndarray]:
    """(the run's level records, a levels × examples matrix of predicted classes for `split`)."""
    store = RunStore(Path(run_dir))
    records = pd.DataFrame(store.records()).sort_values("level").reset_index(drop=True)
    missing = [int(level) for level in records["level"]
               if not (store.dir / "levels" / f"level_{int(level):02d}.predictions.safetensors").exists()]
    if missing:
        raise FileNotFoundError(f"{store.dir.name}: no per-example predictions stored for level {missing[0]} "
                                "(made by an older sddlab; rerun it in a fresh results folder)")
    rows = [store.load_predictions(int(level))[split].numpy() for level in records["level"]]
    return records, np.stack(rows)


def level_summary(run_dir: str | Path) -> pd.DataFrame:
    """Per level: shares of noisy examples fitted to their noisy label or to their true one, and of
    clean examples predicted right and forgotten (right at the dense level, wrong here)."""
    records, predicted = prediction_matrix(run_dir)
    labels = RunStore(Path(run_dir)).load_examples()
    noisy = labels["noisy"].numpy().astype(bool)
    noisy_label, true_label = labels["train_noisy"].numpy(), labels["train_clean"].numpy()
    right = predicted == true_label
    return pd.DataFrame({
        "level": records["level"], "sparsity": records["sparsity"], "test_acc": records["test_acc"],
        "noisy_fitted": (predicted[:, noisy] == noisy_label[noisy]).mean(1) if noisy.any() else np.nan,
        "noisy_true": right[:, noisy].mean(1) if noisy.any() else np.nan,
        "clean_right": right[:, ~noisy].mean(1),
        "clean_forgotten": (right[0, ~noisy] & ~right[:, ~noisy]).mean(1),
    })


def example_table(run_dir: str | Path) -> pd.DataFrame:
    """One row per training example: its labels and the level (and sparsity) at which its training
    label stops being fitted, i.e. the first level from which it is never predicted again (NaN: fitted
    to the last level; level 0 when never fitted)."""
    records, predicted = prediction_matrix(run_dir)
    labels = RunStore(Path(run_dir)).load_examples()
    noisy_label = labels["train_noisy"].numpy()
    fitted = predicted == noisy_label
    # the first level after the last one at which the example is still fitted
    last_fitted = np.where(fitted.any(0), fitted.shape[0] - 1 - np.argmax(fitted[::-1], axis=0), -1)
    stops = last_fitted + 1
    levels, sparsity = records["level"].to_numpy(), records["sparsity"].to_numpy(float)
    ends = stops < len(levels)
    return pd.DataFrame({
        "example": np.arange(predicted.shape[1]),
        "noisy": labels["noisy"].numpy().astype(bool),
        "label": noisy_label,
        "true_label": labels["train_clean"].numpy(),
        "stops_fitted_level": np.where(ends, levels[np.minimum(stops, len(levels) - 1)], np.nan),
        "stops_fitted_sparsity": np.where(ends, sparsity[np.minimum(stops, len(levels) - 1)], np.nan),
        "levels_fitted": fitted.sum(0),
    })


def images_of(x_train: torch.Tensor, examples: list[int], spec: DatasetSpec | None = None) -> np.ndarray:
    """The training images of `examples` as (n, height, width) arrays for display: the data set's own
    `pictures` (digits: its standardisation undone), else square vectors reshaped and channels averaged."""
    rows = x_train[examples]
    if spec is not None and spec.pictures is not None:
        return spec.pictures(rows)
    images = rows.float()
    if images.dim() == 2:  # flat vectors: square images (28x28), or one row (MNIST-1D's 40 samples)
        side = int(round(images.shape[1] ** 0.5))
        images = images.reshape(len(examples), side, side) if side * side == images.shape[1] else images[:, None]
    elif images.dim() == 4:
        images = images.mean(1)
    return images.numpy()
