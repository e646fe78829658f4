"""Analysis of sparse networks and level tables: pure functions, no training, no files.

- `curvature`: Hutchinson Hessian trace and top eigenvalue of the masked loss.
- `directions`: filter-normalised random directions and 1-D loss curves (Li et al. 2018).
- `interpolate`: linear interpolation between two solutions (sparse vs re-dense).
- `phases`: locate light / critical / sweet / collapsed phases in a level table.
- `correlations`: rank correlations of test accuracy with candidate predictors.
- `figures` (import it explicitly; it pulls in plotly): figures for all of the above.
"""

from sddlab.analysis.correlations import correlation_table
from sddlab.analysis.curvature import (
    CurvatureCost,
    estimate_cost,
    hessian_operator,
    hessian_trace,
    hvp,
    top_eigenvalue,
)
from sddlab.analysis.directions import filter_normalised_direction, loss_curve_1d
from sddlab.analysis.functional import evaluate, make_loss
from sddlab.analysis.interpolate import DEFAULT_ALPHAS, interpolate, interpolate_state
from sddlab.analysis.phases import PHASES, PhaseReport, aggregate_levels, detect_phases

__all__ = [
    "DEFAULT_ALPHAS",
    "PHASES",
    "CurvatureCost",
    "PhaseReport",
    "aggregate_levels",
    "correlation_table",
    "detect_phases",
    "estimate_cost",
    "evaluate",
    "filter_normalised_direction",
    "hessian_operator",
    "hessian_trace",
    "hvp",
    "interpolate",
    "interpolate_state",
    "loss_curve_1d",
    "make_loss",
    "top_eigenvalue",
]
