"""Winning ticket vs random re-initialisation (the paper's Figure 10), and one-shot vs iterative pruning.

- ``ticket``: the run's own levels (its level records).
- ``reinit``: each level's mask trained from a fresh init of the same distribution, drawn from the
  stream ``stream_seed(seed, 'reinit', level)`` (independent of the original init, which is the stream
  ``'init'``), over the ticket's iteration window with the ticket's schedule, data order and
  augmentation (`sddlab.preparation.level_span`): only the initial weights differ. Trained by the one loop;
  weights cached per level.
- ``oneshot``: the same config with ``pruning.strategy = 'oneshot'`` (level L prunes the dense model's
  final weights straight to 1 - 0.8^L) run through `sddlab.run` as a run directory of its own, next to
  this one in the results folder. That reuses the core's pruning, retraining, checkpointing and resume
  unchanged, and the one-shot run is an ordinary run that `sddlab.index` lists (its dense level 0 is
  trained again: one level of extra work). Its ``experiment.levels`` is the largest level analysed.

Rows per (variant, level): sparsity, remaining, test and train metrics, memorised, learning distance
(from the variant's own dense initialisation, pruned weights as zero, as the paper's D).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from sddlab import runs
from sddlab.analyses.cache import AnalysisCache, AnalysisResult, say
from sddlab.analyses.levels import AnalysedRun, OpenedLevel, as_run
from sddlab.config import Config
from sddlab.figures.curve import comparison_figure
from sddlab.metrics import learning_distance, measure
from sddlab.models import build_model
from sddlab.seeds import stream_seed
from sddlab.store import RunStore

VARIANTS = ("ticket", "reinit", "oneshot")
COLUMNS = ["variant", "level", "sparsity", "remaining", "test_acc", "test_loss", "train_acc_noisy",
           "train_acc_clean", "train_loss", "memorized", "learning_distance"]


def reinit_state(run: AnalysedRun, level: int) -> dict[str, Any]:
    """The fresh dense initialisation used for `level`'s re-initialised network (not yet masked)."""
    spec, data = run.setup.data.spec, run.setup.data
    fresh = build_model(run.config.model, spec.input_shape, data.num_classes, stream_seed(run.seed, "reinit", level))
    return {name: t.to(run.device) for name, t in fresh.state_dict().items()}


def reinit_level(opened: OpenedLevel, cache: AnalysisCache, progress: bool = True) -> list[dict[str, Any]]:
    """Train the level's mask from a fresh init over the ticket's window; save the weights, return its row."""
    run = opened.run
    init = reinit_state(run, opened.level)
    model = run.load_model(init, opened.mask)
    run.train(model, opened.mask, run.level_span(opened.level), f"re-init level {opened.level}", progress)
    cache.save_weights(opened.item, model.state_dict())
    params = dict(model.named_parameters())
    trained = {name: params[name].detach() for name in opened.mask}
    return [opened.row(variant="reinit", **measure(model, run.setup.data, run.runtime),
                       learning_distance=learning_distance(init, trained, opened.mask, True))]


def oneshot_config(config: Config, levels: int) -> Config:
    """`config` pruned one-shot from the dense model to 1 - (1 - fraction)^L at level L, for L <= levels."""
    return config.with_overrides({"name": f"{config.name}-oneshot", "pruning.strategy": "oneshot",
                                  "experiment.levels": int(levels)})


def run_oneshot(run: AnalysedRun, levels: list[int], results: str | Path | None, progress: bool) -> pd.DataFrame:
    """Run (or read back) the one-shot twin of the run; its records of `levels`."""
    config = oneshot_config(run.config, max(levels))
    results = Path(results) if results is not None else run.dir.parent
    todo = config.experiment.levels + 1 - len(_records(results / config.run_name()))
    if todo > 0:
        span = run.level_span(1)
        iterations = span.end - span.start
        say(f"one-shot: {todo} levels x {iterations:,} iterations = {todo * iterations:,} iterations "
            f"(run {config.run_name()} in {results})", progress)
    run_dir = runs.run(config, results, data_dir=run.data_dir, runtime=run.runtime, progress=progress)
    records = pd.DataFrame(_records(run_dir))
    return records[records["level"].isin(levels)].assign(variant="oneshot")


def _records(run_dir: Path) -> list[dict[str, Any]]:
    """The finished level records of a run directory (none when it does not exist yet)."""
    return RunStore(run_dir).records() if (Path(run_dir) / "config.json").exists() else []


def tickets(run: AnalysedRun | str | Path, levels: list[int] | None = None, *, oneshot: bool = True,
            results: str | Path | None = None, progress: bool = True, data_dir: str | Path | None = None,
            device: str = "auto") -> AnalysisResult:
    """Ticket, random re-init and (optionally) one-shot rows for the given (default: all finished) levels.

    ``results``: the folder for the one-shot run directory (default: the run's own results folder).
    """
    run = as_run(run, data_dir, device)
    levels = run.resolve_levels(levels)
    cache = AnalysisCache(run.dir, "tickets", {"version": 1})
    todo = cache.missing(levels)
    if todo:
        iterations = [span.end - span.start for span in map(run.level_span, todo)]
        say(f"re-init: {len(todo)} levels x {iterations[0]:,} iterations = {sum(iterations):,} iterations", progress)
    reinit = run.per_level(cache, levels, lambda opened: reinit_level(opened, cache, progress), desc="re-init",
                           progress=progress)
    ticket = pd.DataFrame([r for r in run.records() if int(r["level"]) in levels]).assign(variant="ticket")
    frames = [ticket, reinit]
    if oneshot and run.config.pruning.strategy == "oneshot":
        say("one-shot: skipped, the run itself prunes one-shot (its tickets are the one-shot variant)", progress)
    elif oneshot:
        frames.append(run_oneshot(run, levels, results, progress))
    table = pd.concat([frame[[c for c in COLUMNS if c in frame]] for frame in frames], ignore_index=True)
    table = table.sort_values(["variant", "level"], key=lambda c: c.map(VARIANTS.index) if c.name == "variant" else c)
    table = table.reset_index(drop=True)
    cache.write_table(table, "comparison")
    shown = comparison(table)
    figure = comparison_figure(table, by="variant", title=f"{run.config.name}: winning ticket vs random re-init"
                               + (" vs one-shot" if oneshot else ""))
    return AnalysisResult("tickets", table, figure, cache.dir, summary=verdict(shown), compact=shown)


def comparison(table: pd.DataFrame) -> pd.DataFrame:
    """One row per level: test and noisy-train accuracy per variant, and re-init minus ticket test accuracy."""
    out = table.pivot_table(index="level", columns="variant", values=["test_acc", "train_acc_noisy"])
    order = [(m, v) for m in ("test_acc", "train_acc_noisy") for v in VARIANTS if (m, v) in out.columns]
    out = out[order]
    out.columns = [f"{metric}_{variant}" for metric, variant in out.columns]
    # iterative and one-shot sparsities differ slightly (rounding per round): show the ticket's
    sparsity = table.sort_values("variant", key=lambda c: c.map(VARIANTS.index)).groupby("level")["sparsity"].first()
    out = out.reset_index()
    out.insert(1, "sparsity", out["level"].map(sparsity))
    if {"test_acc_reinit", "test_acc_ticket"} <= set(out.columns):
        out["reinit_minus_ticket"] = out["test_acc_reinit"] - out["test_acc_ticket"]
    return out


def verdict(shown: pd.DataFrame) -> str:
    """One line: at how many pruned levels the random re-init beats the ticket, and by how much."""
    if "reinit_minus_ticket" not in shown or shown.empty:
        return "ticket vs re-init: nothing to compare"
    pruned = shown[shown["level"] > 0]
    if pruned.empty:
        return "ticket vs re-init: no pruned level to compare"
    wins = pruned[pruned["reinit_minus_ticket"] > 0]
    text = f"random re-init beats the winning ticket at {len(wins)} of {len(pruned)} pruned levels"
    if not wins.empty:
        best = wins.loc[wins["reinit_minus_ticket"].idxmax()]
        text += (f" (by up to {best['reinit_minus_ticket']:.3f} at level {int(best['level'])}, "
                 f"{100 * best['sparsity']:.2f} % sparsity)")
    mean = pruned["reinit_minus_ticket"].mean()
    return f"{text}; mean difference {mean:+.3f}"
