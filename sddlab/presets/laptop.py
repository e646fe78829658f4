"""Presets that run on a laptop CPU in about a minute or less, on data that needs no download."""

from __future__ import annotations

from sddlab.config import Config
from sddlab.presets.registry import register_preset

# The main job: the default sparse-double-descent experiment on data that needs no download.
DIGITS = register_preset(
    Config(
        name="digits",
        description="MLP 64-256-256-10 on scikit-learn digits, 40% symmetric noise, 30 levels of 20% "
        "global magnitude IMP, rewind to init (the main job, about a minute on a laptop CPU)",
        data={"name": "digits"},
        noise={"type": "symmetric", "rate": 0.4},
        model={"name": "mlp", "hidden": (256, 256), "init": "kaiming_normal"},
        training={"optimizer": "adam", "lr": 3e-3, "schedule": "cosine", "batch_size": 64, "duration": "150ep"},
        pruning={"score": "magnitude", "scope": "global", "fraction": 0.2},
        retraining={"mode": "rewind", "rewind_point": "0it"},
        experiment={"levels": 30, "seed": 0},
    )
)
register_preset(
    DIGITS.with_overrides(
        {
            "name": "digits-noise20",
            "description": "as digits, at 20% symmetric noise (the critical and sweet phases move)",
            "noise.rate": 0.2,
        }
    )
)
register_preset(
    DIGITS.with_overrides(
        {
            "name": "digits-clean",
            "description": "as digits without label noise: the control, where double descent is rarely seen",
            "noise.rate": 0.0,
        }
    )
)
register_preset(
    DIGITS.with_overrides(
        {
            "name": "digits-finetune",
            "description": "as digits, retraining by fine-tuning the previous level at constant LR 3e-4 for 50 epochs",
            "retraining.mode": "finetune",
            "retraining.finetune_lr": 3e-4,
            "retraining.finetune_duration": "50ep",
        }
    )
)
register_preset(
    DIGITS.with_overrides(
        {
            "name": "mnist1d",
            "description": "MLP 40-256-256-10 on MNIST-1D (4000 train), 20% symmetric noise, 30 levels of 60 epochs "
            "(a milder curve: MNIST-1D is hard for an MLP; about 40 s)",
            "data.name": "mnist1d",
            "noise.rate": 0.2,
            "training.duration": "60ep",
            "training.batch_size": 128,
        }
    )
)
register_preset(
    DIGITS.with_overrides(
        {
            "name": "tiny",
            "description": "a few seconds: MLP 64-32-32-10 on digits, 4 levels of 3 epochs (for tests and demos)",
            "model.hidden": [32, 32],
            "training.duration": "3ep",
            "experiment.levels": 4,
        }
    )
)
