"""The one epoch-end policy of every training loop: single runs and the seeds of a lockstep group alike.

At each epoch end, in this order:
1. `RunEpochEnd` (one per run, or per seed of a group): evaluate test accuracy when asked, announce the
   epoch (`EpochEnded`), check divergence (raises `Diverged`), then entropy early stopping (raises
   `EarlyStopped`);
2. `Checkpoints` (one per span: the run's, or the whole group's): poll the stop request, save a partial
   checkpoint every `every` seconds and before stopping, then raise `StopRequested`.
The last epoch of a span neither checkpoints nor stops: nothing is left to resume.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from sddlab.antidotes import PROBE_SIZE, EarlyStopped, EntropyStop, activation_entropy
from sddlab.divergence import check_epoch
from sddlab.events import EpochEnded, Listener
from sddlab.metrics import evaluate
from sddlab.preparation import Setup
from sddlab.training import EpochStats


class StopRequested(Exception):
    """Raised at an epoch boundary when the caller asked to stop; progress was checkpointed first."""


@dataclass
class RunEpochEnd:
    """One run's part of the policy at the end of an epoch of `level` (level -1: pre-training to the rewind
    point): evaluation (`evaluate`), the `EpochEnded` event, divergence, early stopping (`stopper`)."""

    level: int
    model: nn.Module  # the run's model, holding the weights as they are at this epoch end
    setup: Setup
    listener: Listener
    evaluate: bool = False
    stopper: EntropyStop | None = None

    def __call__(self, stats: EpochStats, peak: float | None = None) -> EpochStats:
        """The stats as announced; `peak` is the largest |weight| when the caller already has it."""
        data = self.setup.data
        if self.evaluate:  # evaluation touches no RNG and no BN statistics: results unchanged
            test = evaluate(self.model, data.x_test, data.y_test, transform=data.spec.eval_transform,
                            runtime=self.setup.runtime)
            stats = dataclasses.replace(stats, test_acc=test.acc)
        self.listener(EpochEnded(self.level, stats))
        check_epoch(self.level, stats, self.model, data, self.setup.config, peak)  # raises Diverged
        if self.stopper is not None and not stats.finished and self.stopper.update(self._probe_entropy()):
            raise EarlyStopped(stats.iteration)
        return stats

    def _probe_entropy(self) -> float:
        """The hidden units' on/off entropy over the first training examples, as evaluation sees them."""
        data = self.setup.data
        probe = self.setup.runtime.prepare_inputs(data.spec.eval_transform(data.x_train[:PROBE_SIZE]))
        return activation_entropy(self.model, probe)


class Checkpoints:
    """A span's stop requests and partial checkpoints: `save(iteration)` every `every` seconds and before a
    requested stop, which then raises `StopRequested`."""

    def __init__(self, should_stop: Callable[[], bool] | None, every: float, save: Callable[[int], None]):
        self.should_stop, self.every, self.save = should_stop, every, save
        self.last = time.monotonic()

    def __call__(self, stats: EpochStats) -> None:
        stop = self.should_stop is not None and self.should_stop()
        if stats.finished:  # nothing left to stop or to resume
            return
        if stop or time.monotonic() - self.last > self.every:
            self.save(stats.iteration)
            self.last = time.monotonic()
        if stop:
            raise StopRequested(f"stopped at iteration {stats.iteration}")
