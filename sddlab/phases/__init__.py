"""Locate the four phases of sparse double descent in a table of pruning levels.

Input: one row per (level, seed) with columns ``level`` (0 = dense), ``sparsity``, the test accuracy
and the accuracy on the *noisy* training labels; a ``seed`` column (or simply repeated levels) means
several runs, which are averaged per level first. Decisions compare accuracies with a margin that
grows with seed noise: two levels differ only if they differ by at least
``max(margin, z * sqrt(se_i**2 + se_j**2))``, ``se`` being the standard error of the mean over seeds
(zero for a single seed). An optional centred running mean over ``smooth`` levels is applied to the
mean test accuracy before locating anything.

The landmarks (each a `Landmark`: level, sparsity, mean test accuracy), in the paper's terms
(He et al. 2022, Fig. 1):

- **interpolation threshold**: first level whose mean noisy-train accuracy is below ``1 - tolerance``.
- **critical minimum**: the lowest test accuracy among levels 1 .. threshold + ``slack`` ("at or around
  where train accuracy is still high", never the dense level). If the dense model itself does not
  fit the noisy labels, the window ends where train accuracy drops ``tolerance`` below the dense one.
- **sweet peak**: the highest test accuracy after the critical minimum.
- **double descent** if the minimum is significantly below the dense model *and* the peak
  significantly above the minimum. The peak need not beat the dense model (it does not in the paper's
  CIFAR-100 run); ``peak_above_dense`` says whether it does.
- **collapse**: first level after the peak from which test accuracy stays significantly below the peak
  (without double descent: below the best level).

Phases per level: ``light`` (before test falls significantly below dense for good), ``critical`` (from
there to just before test has recovered half the way from the minimum to the peak), ``sweet`` (from
there to just before the collapse), ``collapsed``. Without double descent only light and collapsed.

Modules: `report` (PHASES, Landmark, PhaseReport), `curve` (aggregate_levels and the value objects the
steps share), `detect` (the steps and detect_phases), `summary` (the text), `lab` (the course lab's checks).
"""

from sddlab.phases.curve import aggregate_levels
from sddlab.phases.detect import detect_phases
from sddlab.phases.lab import check_curve, print_checks
from sddlab.phases.landmarks import PHASES, Landmark, PhaseReport

__all__ = ["PHASES", "Landmark", "PhaseReport", "aggregate_levels", "check_curve", "detect_phases", "print_checks"]
