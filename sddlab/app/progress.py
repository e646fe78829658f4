"""A tqdm progress bar over the epochs of a run, as a listener of its events."""

from __future__ import annotations

from tqdm.auto import tqdm

from sddlab.events import EpochEnded, Event, LevelFinished, LevelStarted, RunFinished, RunStarted


class ProgressBar:
    """One bar over all epochs still to train; the postfix shows level, sparsity and last test accuracy."""

    def __init__(self, **tqdm_kwargs):
        self.kwargs = tqdm_kwargs
        self.bar: tqdm | None = None
        self.postfix: dict[str, str] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            todo = sum(event.epochs_per_level[event.finished :])
            self.bar = tqdm(total=todo, unit="ep", desc=event.run_dir.name, **self.kwargs)
        elif self.bar is None:
            return
        elif isinstance(event, LevelStarted):
            self.postfix.update(level=str(event.level), sparsity=f"{event.sparsity:.2%}")
            self.bar.set_postfix(self.postfix, refresh=False)
        elif isinstance(event, EpochEnded) and event.level >= 0:
            self.bar.update(1)
        elif isinstance(event, LevelFinished) and not event.cached:
            self.postfix["test"] = f"{event.record['test_acc']:.3f}"
            self.bar.set_postfix(self.postfix)
        elif isinstance(event, RunFinished):
            self.bar.close()
