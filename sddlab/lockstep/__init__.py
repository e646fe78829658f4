"""Seeds of one config trained together as one stacked model, written as ordinary run directories.

The entry points that run configs (`run_lockstep`, `run_seeds`) live in `sddlab.runs`, beside `run`.
"""

from sddlab.lockstep.group import LockstepGroup, SeedListener, check_lockstep
from sddlab.lockstep.stacked import LOCKSTEP_MODELS, StackedMLP, supports_lockstep

__all__ = ["LOCKSTEP_MODELS", "LockstepGroup", "SeedListener", "StackedMLP", "check_lockstep", "supports_lockstep"]
