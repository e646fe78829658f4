"""Pure functions on sparse networks: no files, no training.

- `functional`: the masked loss as a pure function of the parameters (torch.func).
- `hessian`: Hutchinson Hessian trace and top eigenvalue of the masked loss.
- `eigen`: largest eigenvalue of a symmetric operator (power iteration, Lanczos).
- `directions`: filter-normalised random directions and 1-D loss curves (Li et al. 2018).
- `linear_path`: linear interpolation between two solutions (sparse vs re-dense).
- `ranks`: rank correlations of test accuracy with candidate predictors.
"""
