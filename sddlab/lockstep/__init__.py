"""Seeds of one config trained together as one stacked model (MLP family), written as ordinary run directories."""

from sddlab.lockstep.group import SeedListener, check_lockstep, run_lockstep, run_seeds
from sddlab.lockstep.stacked import LOCKSTEP_MODELS, StackedMLP, supports_lockstep

__all__ = ["LOCKSTEP_MODELS", "SeedListener", "StackedMLP", "check_lockstep", "run_lockstep", "run_seeds",
           "supports_lockstep"]
