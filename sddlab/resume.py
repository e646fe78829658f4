"""Mid-level checkpoints: model and optimizer state at an epoch boundary, so a long level resumes there."""

from __future__ import annotations

import json
from typing import Any

import torch
from torch import nn

from sddlab.store import RunStore


def save_partial(store: RunStore, name: str, model: nn.Module, optimizer: torch.optim.Optimizer,
                 iteration: int, notes: str | None = None) -> None:
    """Model and optimizer state after `iteration` iterations, in one safetensors checkpoint.

    `notes` (a string, e.g. the early-stopping history) is kept in its metadata under "notes"."""
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    opt_tensors, opt_meta = _optimizer_tensors(optimizer)
    tensors.update(opt_tensors)
    metadata = {"iteration": str(iteration), "optimizer": opt_meta} | ({} if notes is None else {"notes": notes})
    store.save_checkpoint(name, tensors, metadata)


def restore_partial(store: RunStore, name: str, model: nn.Module, optimizer: torch.optim.Optimizer,
                    device: str) -> int:
    """Load a `save_partial` checkpoint into `model` and `optimizer`; returns the iteration to resume at."""
    meta = store.checkpoint_metadata(name)
    tensors = store.load_checkpoint(name, device)
    model.load_state_dict({k.removeprefix("model/"): v for k, v in tensors.items() if k.startswith("model/")})
    _restore_optimizer(optimizer, tensors, meta["optimizer"])
    return int(meta["iteration"])


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], str]:
    """Optimizer state as flat tensors plus JSON metadata (param groups, scalar state)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{index}/{key}"] = value
            elif value is not None:
                scalars[f"{index}/{key}"] = value
    meta = json.dumps({"param_groups": state["param_groups"], "scalars": scalars})
    return tensors, meta


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: str) -> None:
    decoded = json.loads(meta)
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value
    for key, value in decoded["scalars"].items():
        index, name = key.split("/", 1)
        state.setdefault(int(index), {})[name] = value
    # saved tensors are contiguous; give each buffer its parameter's memory format (channels-last conv
    # weights), since fused optimizer kernels walk parameter and buffer memory in step
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for index, values in state.items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor) and value.shape == params[index].shape:
                values[name] = torch.empty_like(params[index], dtype=value.dtype).copy_(value)
    optimizer.load_state_dict({"state": state, "param_groups": decoded["param_groups"]})
