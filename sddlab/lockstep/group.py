"""Seeds of one config trained in lockstep: K ordinary run directories, one stacked model on one device.

Each seed keeps its own `Experiment` (init, noise draw, data order, masks, records, store and lock);
only the training spans of a level run together. Pretraining to a rewind point t > 0 runs per seed.
Every epoch end follows `sddlab.epoch_end`, as a single run's: each seed is evaluated, announced and
checked for divergence; the group checkpoints and stops as one.

A seed that diverges is recorded as a single run's would be (its level record holds the reason, no
measurements) and leaves the group at that epoch end; the other seeds go on from there, restacked, to the
last level. The group then raises `SeedsDiverged`, one line naming each diverged seed and why; a rerun
repeats it for those seeds without training them (the others are finished and read back).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from sddlab.config import Config
from sddlab.divergence import Diverged, SeedsDiverged, largest_per_seed
from sddlab.epoch_end import Checkpoints
from sddlab.errors import ConfigError
from sddlab.events import Event
from sddlab.experiment import Experiment, LevelStart
from sddlab.lockstep.loop import train_stacked
from sddlab.lockstep.stacked import (
    LOCKSTEP_MODELS,
    StackedMLP,
    slice_optimizer_state,
    stack_optimizer_states,
    supports_lockstep,
)
from sddlab.resume import restore_partial, save_partial
from sddlab.runtime import Runtime
from sddlab.store import partial_checkpoint
from sddlab.training import EpochStats, make_optimizer

SeedListener = Callable[[int, Event], None]  # (seed, event): the explorer's per-seed curves and bands
Member = tuple[int, LevelStart, "torch.optim.Optimizer | None"]  # (experiment index, level start, resumed state)


def check_lockstep(configs: Sequence[Config]) -> None:
    """One-line errors before any work: same config up to the seed, distinct seeds, an MLP-family model."""
    if not configs:
        raise ConfigError("seeds", "[]", "at least one seed")
    base = configs[0].with_overrides({"experiment.seed": 0}).short_hash()
    for config in configs:
        if config.model.name not in LOCKSTEP_MODELS:
            raise ConfigError("model.name", config.model.name, "mlp or lenet-300-100 for lockstep seeds")
        if not supports_lockstep(config):
            raise ConfigError("lockstep", config.name, "no distillation and no early stopping (run seeds apart)")
        if config.with_overrides({"experiment.seed": 0}).short_hash() != base:
            raise ConfigError("lockstep", config.name, "configs that differ in experiment.seed only")
    seeds = [config.experiment.seed for config in configs]
    if len(set(seeds)) != len(seeds):
        raise ConfigError("experiment.seed", str(seeds), "distinct seeds")


class LockstepGroup:
    """Runs the levels of K seeds' experiments; the seeds that still need a level train it together.

    A seed that diverges (now, or in a stored record) is recorded and left out of later levels; `run`
    finishes the others, then raises `SeedsDiverged`."""

    def __init__(self, experiments: list[Experiment], runtime: Runtime):
        self.experiments, self.runtime = experiments, runtime
        self.diverged: dict[int, Diverged] = {}  # experiment index -> why it left the group

    def run(self) -> list[Path]:
        starts = {}
        for k, experiment in enumerate(self.experiments):
            try:
                starts[k] = experiment.begin()
            except Diverged as error:  # stored, or in the pre-training to the rewind point
                self.diverged[k] = error
        levels = self.experiments[0].config.experiment.levels + 1
        for level in range(levels):
            active = [k for k in starts if k not in self.diverged and not self.experiments[k].store.has_level(level)]
            if not active:
                continue
            begun = {k: self.experiments[k].start_level(level, *starts[k]) for k in active}
            self._train_level(level, begun)
            for k, start in begun.items():
                if k not in self.diverged:
                    self.experiments[k].finish_level(start)
        finished = [e.end() for k, e in enumerate(self.experiments) if k not in self.diverged]
        if self.diverged:
            raise SeedsDiverged({self.experiments[k].seed: error for k, error in self.diverged.items()},
                                len(self.experiments))
        return finished

    def _train_level(self, level: int, begun: dict[int, LevelStart]) -> None:
        """Resume each seed from its partial checkpoint, then train together the seeds at the same iteration."""
        groups: dict[int, list[Member]] = {}
        for k, start in begun.items():
            experiment = self.experiments[k]
            name, at, optimizer = partial_checkpoint(start.span.stream), start.span.start, None
            if experiment.store.has_checkpoint(name):
                optimizer = make_optimizer(experiment.model, start.span.training)
                at = restore_partial(experiment.store, name, experiment.model, optimizer, experiment.device)
            groups.setdefault(at, []).append((k, start, optimizer))
        for at, members in sorted(groups.items()):
            self._train_together(level, members, at)

    def _train_together(self, level: int, members: list[Member], at: int) -> None:
        """Train `members` from iteration `at`; seeds that diverge are recorded and the rest restacked."""
        while members:
            stacked = StackedMLP([self.experiments[k].model for k, _, _ in members])
            training = members[0][1].span.training
            optimizer = make_optimizer(stacked, training)
            if at > members[0][1].span.start:
                optimizer.load_state_dict(stack_optimizer_states([opt.state_dict() for _, _, opt in members]))
            dtype = stacked.stack[0].dtype
            masks = {name: torch.stack([start.mask[name] for _, start, _ in members]).to(stacked.stack[0].device,
                                                                                         dtype)
                     for name in members[0][1].mask}
            spans = [start.span.resumed_at(at) for _, start, _ in members]
            hook = _EpochEnd(self.experiments, level, members, stacked, optimizer)
            try:
                train_stacked(stacked, masks, [self.experiments[k].setup.data for k, _, _ in members], spans,
                              optimizer, self.runtime, hook, track=self.experiments[members[0][0]].epoch_metrics)
            except _SeedsLeft as left:  # record them as a single run would; the others go on from here
                for k, start, _ in members:
                    if k in left.errors:
                        self.diverged[k] = left.errors[k]
                        self.experiments[k].record_diverged(start, left.errors[k])
                members = [(k, start, hook.seed_optimizer(i)) for i, (k, start, _) in enumerate(members)
                           if k not in left.errors]
                at = left.iteration
                continue
            for i, (k, _, _) in enumerate(members):
                stacked.copy_into(i, self.experiments[k].model)
            return


class _SeedsLeft(Exception):
    """Seeds of the stacked model diverged at an epoch end (by experiment index); the others go on from
    `iteration`, their weights already copied into their models."""

    def __init__(self, errors: dict[int, Diverged], iteration: int):
        super().__init__(f"{len(errors)} seed(s) diverged at iteration {iteration}")
        self.errors, self.iteration = errors, iteration


class _EpochEnd:
    """The epoch-end policy (`sddlab.epoch_end`) for a stacked group: each seed's part, then the group's
    checkpoints and stop request; diverged seeds leave the group (`_SeedsLeft`)."""

    def __init__(self, experiments: list[Experiment], level: int, members: list[Member], stacked: StackedMLP,
                 optimizer: torch.optim.Optimizer):
        self.experiments, self.members, self.stacked, self.optimizer = experiments, members, stacked, optimizer
        self.runs = [experiments[k].epoch_end(level) for k, _, _ in members]
        lead = experiments[members[0][0]]
        self.checkpoints = Checkpoints(lead.should_stop, lead.checkpoint_every, self._checkpoint)

    def __call__(self, stats: list[EpochStats]) -> None:
        peaks = largest_per_seed(list(self.stacked.stack))  # one pass over the stacked weights for every seed
        diverged = {}
        for i, (k, _, _) in enumerate(self.members):
            if self.runs[i].evaluate:
                self.stacked.copy_into(i, self.experiments[k].model)
            try:
                self.runs[i](stats[i], peaks[i])
            except Diverged as error:
                diverged[k] = error
        if diverged:
            for i, (k, _, _) in enumerate(self.members):
                self.stacked.copy_into(i, self.experiments[k].model)
            raise _SeedsLeft(diverged, stats[0].iteration)
        self.checkpoints(stats[0])

    def seed_optimizer(self, i: int) -> torch.optim.Optimizer:
        """Member i's slice of the stacked optimizer as an ordinary optimizer over its model."""
        k, start, _ = self.members[i]
        optimizer = make_optimizer(self.experiments[k].model, start.span.training)
        optimizer.load_state_dict(slice_optimizer_state(self.optimizer.state_dict(), i))
        return optimizer

    def _checkpoint(self, iteration: int) -> None:
        """Each seed's model and optimizer state, as an ordinary run's partial checkpoint."""
        for i, (k, start, _) in enumerate(self.members):
            experiment = self.experiments[k]
            self.stacked.copy_into(i, experiment.model)
            save_partial(experiment.store, partial_checkpoint(start.span.stream), experiment.model,
                         self.seed_optimizer(i), iteration)
