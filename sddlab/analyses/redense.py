"""Re-dense training (the paper's first flatness check): restore a level's pruned weights at zero,
make every weight trainable again (an all-True mask) and train the dense network further from the
level's final weights with the one training loop, at a constant learning rate.

Defaults follow the paper (160 epochs at the schedule's last LR): the run's ``training.duration`` at
the learning rate its schedule ends with. A schedule that anneals to (almost) zero, such as cosine,
has no usable last LR; below ``MIN_FRACTION`` of the base LR the re-dense LR is ``MIN_FRACTION`` x
the base LR instead, the ratio of the paper's CIFAR schedule (0.1 -> 0.001). The chosen LR and
length are in the table and in the cache folder's options.json.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import torch
from tqdm.auto import tqdm

from sddlab import pruning
from sddlab import training as loop
from sddlab.analyses.cache import AnalysisCache, AnalysisResult, level_item, say
from sddlab.analyses.context import AnalysedRun, Weights, as_run
from sddlab.config import TrainingConfig, to_iterations
from sddlab.errors import ConfigError
from sddlab.metrics import level_metrics

MIN_FRACTION = 0.01
METRICS = ("test_acc", "test_loss", "train_acc_noisy", "train_acc_clean", "train_loss", "memorized")


def final_lr(training: TrainingConfig, per_epoch: int) -> float:
    """The LR at the schedule's last iteration, or MIN_FRACTION x base when it anneals below that."""
    schedule = loop.Schedule.from_config(training, per_epoch)
    last = schedule(max(to_iterations(training.duration, per_epoch) - 1, 0))
    return max(last, MIN_FRACTION * training.lr)


@dataclasses.dataclass(frozen=True)
class RedenseSettings:
    duration: str
    iterations: int
    lr: float
    training: TrainingConfig

    def options(self) -> dict[str, Any]:
        return {"version": 1, "duration": self.duration, "lr": self.lr}


def settings(run: AnalysedRun, duration: str | None = None, lr: float | None = None) -> RedenseSettings:
    """Resolve the defaults: the run's training length at its final (constant) learning rate."""
    config, per_epoch = run.config.training, run.plan.per_epoch
    duration = duration or config.duration
    try:
        iterations = to_iterations(duration, per_epoch)
    except (AttributeError, TypeError):
        raise ConfigError("duration", duration, "a duration like '150ep' or '1000it'") from None
    if iterations <= 0:
        raise ConfigError("duration", duration, "a positive duration")
    if lr is not None and lr <= 0:
        raise ConfigError("lr", lr, "a positive learning rate")
    lr = float(lr) if lr is not None else final_lr(config, per_epoch)
    training = config.model_copy(update={"lr": lr, "schedule": "constant", "warmup": "0it", "duration": duration})
    return RedenseSettings(duration, iterations, lr, training)


def measure(run: AnalysedRun, model: torch.nn.Module) -> dict[str, float]:
    """The level record's metrics of `model` on the run's data (test; noisy, clean train; memorised)."""
    data, runtime = run.plan.data, run.runtime
    test = loop.evaluate(model, data.x_test, data.y_test, data.spec.eval_transform, runtime)
    train = loop.evaluate(model, data.x_train, data.y_train, data.spec.eval_transform, runtime)
    extra = level_metrics(train.predictions, data.y_train, data.y_train_clean, data.noisy)
    return {"test_acc": test.acc, "test_loss": test.loss, "train_acc_noisy": train.acc,
            "train_acc_clean": extra["train_acc_clean"], "train_loss": train.loss, "memorized": extra["memorized"]}


def train_span(run: AnalysedRun, model: torch.nn.Module, mask: dict[str, torch.Tensor], training: TrainingConfig,
               schedule: Any, start: int, end: int, stream: str, desc: str, progress: bool) -> None:
    """One span of the run's training loop with a fresh optimizer and an epoch progress bar."""
    optimizer = loop.make_optimizer(model, training)
    epochs = -(-end // run.plan.per_epoch) - start // run.plan.per_epoch
    with tqdm(total=epochs, desc=desc, unit="ep", leave=False, disable=not progress) as bar:
        loop.train(model, mask, run.plan.data, training, optimizer, schedule, start=start, end=end, seed=run.seed,
                   stream=stream, runtime=run.runtime, on_epoch=lambda stats: bar.update(1))


def redense_weights(run: AnalysedRun, level: int, chosen: RedenseSettings, cache: AnalysisCache,
                    progress: bool = True) -> list[dict[str, Any]]:
    """Train one level's re-dense network (weights saved in the cache); rows for sparse and re-dense."""
    mask, weights = run.level_state(level)
    model = run.load_model(weights, mask)  # pruned weights restored at exactly zero
    sparse = {name: t.detach().clone() for name, t in model.state_dict().items()}
    before = measure(run, model)
    dense = pruning.dense_mask(model, run.plan.prunable)
    schedule = loop.Schedule(base_lr=chosen.lr, total=chosen.iterations)
    train_span(run, model, dense, chosen.training, schedule, 0, chosen.iterations, f"redense-{level_item(level)}",
               f"re-dense level {level}", progress)
    after = measure(run, model)
    cache.save_weights(level_item(level), model.state_dict())
    params = dict(model.named_parameters())
    moved = sum(float(((params[n].detach() - sparse[n]).double() ** 2).sum()) for n in mask) ** 0.5
    regrown = sum(float(((params[n].detach() * ~mask[n]).double() ** 2).sum()) for n in mask) ** 0.5
    record = run.record(level)
    common = {"level": level, "sparsity": record["sparsity"], "remaining": record["remaining"],
              "lr": chosen.lr, "iterations": chosen.iterations}
    return [
        {**common, "model": "sparse", **before, "moved": 0.0, "regrown": 0.0},
        {**common, "model": "redense", **after, "moved": moved, "regrown": regrown},
    ]


def redense(run: AnalysedRun | str | Path, levels: list[int] | None = None, *, duration: str | None = None,
            lr: float | None = None, progress: bool = True, data_dir: str | Path = "data",
            device: str = "auto") -> AnalysisResult:
    """Re-dense training of the given (default: all finished) levels; tidy rows per (level, model).

    ``model`` is ``sparse`` (the level's own weights) or ``redense``; ``moved`` is ||w_redense - w_sparse||
    and ``regrown`` the norm of the re-dense weights at the formerly pruned coordinates.
    """
    run = as_run(run, data_dir, device)
    levels = run.resolve_levels(levels)
    chosen = settings(run, duration, lr)
    cache = AnalysisCache(run.dir, "redense", chosen.options())
    todo = [lv for lv in levels if not cache.has(level_item(lv))]
    if todo:
        say(f"re-dense: {len(todo)} levels x {chosen.iterations:,} iterations = {len(todo) * chosen.iterations:,} "
            f"iterations at constant LR {chosen.lr:.3g} ({chosen.duration})", progress)
    table = cache.items([level_item(lv) for lv in levels],
                        lambda item: redense_weights(run, int(item[6:]), chosen, cache, progress),
                        desc="re-dense", progress=progress)
    line = f"re-dense: {len(levels)} levels, {chosen.iterations} iterations at LR {chosen.lr:.3g}"
    return AnalysisResult("redense", table, redense_figure(table), cache.dir, summary=line, display=display(table),
                          extra={"settings": chosen})


def load_redense(run: AnalysedRun, level: int, duration: str | None = None, lr: float | None = None) -> Weights:
    """The cached re-dense weights of one level (run `redense` first)."""
    cache = AnalysisCache(run.dir, "redense", settings(run, duration, lr).options())
    return cache.load_weights(level_item(level), run.device)


def display(table: pd.DataFrame) -> pd.DataFrame:
    """One row per level: sparse and re-dense test / noisy-train accuracy side by side."""
    out = table.pivot_table(index=["level", "sparsity"], columns="model",
                            values=["test_acc", "train_acc_noisy", "train_loss"])
    out.columns = [f"{metric}_{model}" for metric, model in out.columns]
    return out.reset_index()


def redense_figure(table: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    for model, dash in (("sparse", "solid"), ("redense", "dash")):
        part = table[table["model"] == model].sort_values("level")
        x = (1.0 - part["sparsity"]).clip(lower=1e-6)
        fig.add_trace(go.Scatter(x=x, y=part["test_acc"], name=f"{model} test", line={"dash": dash},
                                 mode="lines+markers", customdata=part["level"],
                                 hovertemplate="level %{customdata}: %{y:.4f}"))
        fig.add_trace(go.Scatter(x=x, y=part["train_acc_noisy"], name=f"{model} train (noisy)",
                                 line={"dash": "dot" if model == "sparse" else "dashdot"}, mode="lines+markers"))
    fig.update_xaxes(type="log", autorange="reversed", title="fraction of prunable weights remaining")
    fig.update_yaxes(title="accuracy")
    fig.update_layout(title="Re-dense training: sparse vs re-dense", template="plotly_white")
    return fig
