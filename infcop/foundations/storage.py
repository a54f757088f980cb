"""Atomic writes, guarded reads and file locks: nothing the harness writes is ever half-written.

Every file is written to a temporary sibling and renamed into place, so a killed job leaves
either the old file or the new one, never half of one; the temporary it may leave behind is
removed by the next run that holds the directory's lock (`remove_stale_temporaries`). Files get
the permissions of any file the user creates (0666 less the umask), so collaborators on a shared
filesystem can read results. Checkpoints carry a sha256 of their tensors, checked on every load.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import logging
import os
import secrets
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

log = logging.getLogger("infcop")
TMP_SUFFIX = ".tmp"
CHECKSUM_KEY = "tensor_sha256"


class CorruptFile(RuntimeError):
    """A result or checkpoint file exists but cannot be read."""


class ConfigMismatch(RuntimeError):
    """A result on disk was produced by a different configuration."""


def _atomic(path: Path, write: Callable[[Any], None], mode: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}"
    # os.open with 0o666 lets the kernel apply the umask, as for any file the user creates
    # (tempfile.mkstemp would make it 0600: unreadable to collaborators on a shared filesystem).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temporaries(root: Path) -> int:
    """Delete the temporaries killed writes left under `root`. Only call it holding `root`'s
    run lock: then no other process is writing there. Returns how many were removed. A symbolic
    link under `root` is never followed: what lies outside the harness's own files is
    not its to clean."""
    stale = [
        Path(d, name)
        for d, _, names in os.walk(root)
        for name in names
        if name.startswith(".") and name.endswith(TMP_SUFFIX) and not Path(d, name).is_symlink()
    ]
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        log.info(
            "removed %d temporary file(s) left by an interrupted write under %s", len(stale), root
        )
    return len(stale)


def remove_tree(root: Path) -> None:
    """Delete a directory the harness wrote (a run of another config). A symbolic link, at `root` or
    inside it, is removed as a link: its target, outside the harness's files, is never touched."""
    root = Path(root)
    if root.is_symlink():
        root.unlink()
    elif root.is_dir():
        shutil.rmtree(root)


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
        raise CorruptFile(
            f"{path} is corrupt (not valid JSON: {err}); delete it to recompute"
        ) from err


# ---------------------------------------------------------------- checkpoints with a checksum
def tensors_sha256(obj: Any) -> str:
    """sha256 over every tensor in a nested dict / list (keys, dtypes, shapes and
    bytes, in order)."""
    import torch

    h = hashlib.sha256()

    def walk(node: Any, where: str) -> None:
        if isinstance(node, torch.Tensor):
            t = node.detach().cpu().contiguous().reshape(-1)
            h.update(f"{where}:{node.dtype}:{tuple(node.shape)};".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(node, dict):
            for k in sorted(node, key=str):
                if k != CHECKSUM_KEY:
                    walk(node[k], f"{where}/{k}")
        elif isinstance(node, (list, tuple)):
            for i, v in enumerate(node):
                walk(v, f"{where}[{i}]")

    walk(obj, "")
    return h.hexdigest()


def save_checkpoint(state: dict, path: Path) -> None:
    """Write a checkpoint (a dict holding tensors) atomically, with the sha256 of its tensors."""
    atomic_torch_save({**state, CHECKSUM_KEY: tensors_sha256(state)}, path)


def load_checkpoint(path: Path, recovery: str = "delete it to recompute") -> Any:
    """A checkpoint's state, its checksum verified (checkpoints written before checksums are taken
    as they are). `recovery` says what to do when it is unreadable or fails the check."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise CorruptFile(
            f"checkpoint {path} is corrupt or unreadable ({err}); {recovery}"
        ) from err
    if (
        isinstance(state, dict)
        and CHECKSUM_KEY in state
        and state[CHECKSUM_KEY] != tensors_sha256(state)
    ):
        raise CorruptFile(
            f"checkpoint {path} fails its checksum (its tensors changed since they were written); "
            f"{recovery}"
        )
    return state


# ---------------------------------------------------------------- one writer per directory
_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


@contextmanager
def file_lock(path: Path, what: str = "") -> Iterator[None]:
    """Hold an exclusive lock on `path` (one writer per run directory, or per dataset fetch); a
    second holder waits, after saying once who holds it.

    The lock is a POSIX record lock (fcntl.lockf) on a lock file beside the directory it guards.
    That is the lock NFS implements across machines (NLM on v3, built into v4), and Lustre and GPFS
    honour it cluster-wide too, whereas flock(2) is node-local on some cluster mounts. The kernel
    (or the NFS server, once the client's lease expires) releases it when its holder dies, even by
    SIGKILL, so no stale lock is ever left to clean up: the O_EXCL lock files some tools use instead
    need host/pid guesses and timeouts for exactly that, which a preempted SLURM job defeats. POSIX
    locks belong to a process, not a thread, so threads of one process are serialised by an
    in-process lock first. The holder writes its host, pid and start time into the file, for the
    waiting process's message."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _THREAD_LOCKS_GUARD:
        thread_lock = _THREAD_LOCKS.setdefault(str(path.resolve()), threading.Lock())
    with thread_lock, open(path, "a+") as f:
        try:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            log.warning(
                "%s is being written by %s; waiting for it to finish (lock %s)",
                what or path.parent,
                holder,
                path,
            )
            fcntl.lockf(f, fcntl.LOCK_EX)
        try:
            f.seek(0)
            f.truncate()
            f.write(
                f"host {socket.gethostname()} pid {os.getpid()} since "
                f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n"
            )
            f.flush()
            yield
        finally:
            f.truncate(0)
            f.flush()
            fcntl.lockf(f, fcntl.LOCK_UN)
