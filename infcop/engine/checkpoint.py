"""Level checkpoints of an IMP run: written after every completed level, only the newest kept.

A checkpoint holds everything the next level depends on (weights, mask, every RNG state, the rows
so far), so a killed run restarted with the same command computes exactly what an uninterrupted
one would. One from another config is an error, never silently reused; one whose tensors fail
their checksum (a flipped byte in a mask or weight) is an error too, never resumed.
"""

from __future__ import annotations

from typing import Any

import torch

from infcop.foundations.paths import RunDir
from infcop.foundations.storage import ConfigMismatch, load_checkpoint, save_checkpoint


def capture_rng() -> dict[str, Any]:
    """The global RNG states a level may draw from (dropout, on CPU and every CUDA device)."""
    return {
        "cpu": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def restore_rng(state: Any) -> None:
    if isinstance(state, torch.Tensor):  # checkpoints written before the CUDA state was kept
        torch.set_rng_state(state)
        return
    torch.set_rng_state(state["cpu"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class LevelCheckpoints:
    def __init__(self, run: RunDir, config_hash: str):
        self.run, self.config_hash = run, config_hash

    def _found(self) -> list:
        return sorted(self.run.checkpoints.glob("level*.pt"), key=RunDir.checkpoint_level)

    def latest(self) -> dict | None:
        """The newest checkpoint's state, checked to belong to this run's config; None
        if there is none."""
        found = self._found()
        if not found:
            return None
        state = load_checkpoint(
            found[-1],
            f"delete it and rerun: only the newest checkpoint is kept, so the run "
            f"restarts from level 1 (or delete {self.run.root} to start afresh)",
        )
        if not isinstance(state, dict) or "config_hash" not in state:
            raise ConfigMismatch(
                f"checkpoint {found[-1]} is not an IMP level checkpoint; delete {self.run.root} "
                "to restart"
            )
        if state["config_hash"] != self.config_hash:
            raise ConfigMismatch(
                f"checkpoint {found[-1]} belongs to config {state['config_hash']}, this config is "
                f"{self.config_hash}; delete {self.run.root} to restart with the new config"
            )
        return state

    def save(self, state: dict) -> None:
        path = self.run.checkpoint(state["level"])
        save_checkpoint({**state, "config_hash": self.config_hash}, path)
        for old in self._found():
            if old != path:
                old.unlink()
