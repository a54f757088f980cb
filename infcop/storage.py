"""Atomic writes, guarded reads and file locks: nothing the harness writes is ever half-written.

Every file is written to a temporary sibling and renamed into place, so a killed job leaves
either the old file or the new one, never half of one.
"""
from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator


class CorruptFile(RuntimeError):
    """A result or checkpoint file exists but cannot be read."""


class ConfigMismatch(RuntimeError):
    """A result on disk was produced by a different configuration."""


def _atomic(path: Path, write: Callable[[Any], None], mode: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    _atomic(path, lambda f: f.write(text), "w")


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=True) + "\n")


def atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    _atomic(path, lambda f: torch.save(obj, f), "wb")


def atomic_write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    atomic_write_text(path, buf.getvalue())


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise CorruptFile(f"{path} is corrupt (not valid JSON: {err}); delete it to recompute") from err


def load_checkpoint(path: Path) -> Any:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise CorruptFile(f"checkpoint {path} is corrupt or unreadable ({err}); delete it to recompute") from err


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Serialise concurrent jobs that would produce the same result (e.g. two methods' first dense run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
