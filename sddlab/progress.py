"""A tqdm progress bar over the epochs of a run, as a listener of its events (the loop never calls it)."""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm

from sddlab.events import EpochEnded, Event, LevelFinished, LevelStarted, RunFinished, RunStarted


class ProgressBar:
    """One bar over all epochs still to train; the postfix shows level, sparsity and last test accuracy.

    A diverged level shows `test=diverged` and closes the bar, so the run's one-line error follows it.
    """

    def __init__(self, **tqdm_kwargs: Any):
        self.kwargs = tqdm_kwargs
        self.bar: tqdm | None = None
        self.postfix: dict[str, str] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.close()
            todo = sum(event.epochs_per_level[event.finished :])
            if todo:  # a finished run read back trains nothing: no empty bar
                self.bar = tqdm(total=todo, unit="ep", desc=event.run_dir.name, **self.kwargs)
        elif self.bar is None:
            return
        elif isinstance(event, LevelStarted):
            self.postfix.update(level=str(event.level), sparsity=f"{event.sparsity:.2%}")
            self.bar.set_postfix(self.postfix, refresh=False)
        elif isinstance(event, EpochEnded) and event.level >= 0:
            self.bar.update(1)
        elif isinstance(event, LevelFinished) and not event.cached:
            diverged = "diverged" in event.record
            self.postfix["test"] = "diverged" if diverged else f"{event.record['test_acc']:.3f}"
            self.bar.set_postfix(self.postfix)
            if diverged:
                self.close()
        elif isinstance(event, RunFinished):
            self.close()

    def show(self, key: str, value: str) -> None:
        """An entry of the postfix (e.g. which seeds of a group diverged)."""
        self.postfix[key] = value
        if self.bar is not None:
            self.bar.set_postfix(self.postfix)

    def close(self) -> None:
        """Close the bar (once; later events until the next RunStarted are ignored)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
