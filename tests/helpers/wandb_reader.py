"""Read an offline W&B run file (run-<id>.wandb) back into plain Python, for the tests.

The file is a 7-byte W&B header (":W&B", magic 0xBEE1, version) followed by a LevelDB-style log:
32 KiB blocks of chunks, each with a 7-byte header (CRC32C, little-endian length, type 1 FULL /
2 FIRST / 3 MIDDLE / 4 LAST); a block tail shorter than a header is zero padding. Each
reassembled payload is a serialized wandb.proto.wandb_internal_pb2.Record.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32 * 1024
HEADER = 7


def records(path: Path):
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    pos, pending = 7, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0 and length == 0:  # zero padding to the end of the block
            pos += left
            continue
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == 1:
            payload = chunk
        elif kind == 2:
            pending = chunk
            continue
        elif kind == 3:
            pending += chunk
            continue
        else:
            payload, pending = pending + chunk, b""
        rec = pb.Record()
        rec.ParseFromString(payload)
        yield rec


def _key(item) -> str:
    return item.key or ".".join(item.nested_key)


def read_run(path: Path) -> dict:
    """{"run": {id, group, job_type, name}, "config": {...}, "tags": [...], "history": [{...}],
    "summary": {...}, "metrics": [...], "artifacts": [{name, type, files}]}"""
    out: dict = {
        "run": {},
        "config": {},
        "tags": [],
        "history": [],
        "summary": {},
        "metrics": [],
        "artifacts": [],
    }
    for rec in records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            out["run"] = {
                "id": r.run_id,
                "group": r.run_group,
                "job_type": r.job_type,
                "name": r.display_name,
            }
            out["config"].update({_key(i): json.loads(i.value_json) for i in r.config.update})
            out["tags"] = list(r.tags)
        elif kind == "config":
            out["config"].update({_key(i): json.loads(i.value_json) for i in rec.config.update})
        elif kind == "history":
            out["history"].append({_key(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            out["summary"].update({_key(i): json.loads(i.value_json) for i in rec.summary.update})
        elif kind == "metric":
            out["metrics"].append({"name": rec.metric.name, "step_metric": rec.metric.step_metric})
        elif kind == "artifact":
            a = rec.artifact
            out["artifacts"].append(
                {"name": a.name, "type": a.type, "files": [c.path for c in a.manifest.contents]}
            )
    # every run file starts with its run record; none means the service had not closed the file yet
    assert out["run"], (
        f"{path}: no run record ({Path(path).stat().st_size} bytes); read before W&B closed it?"
    )
    return out


def find_runs(wandb_dir: Path) -> list[Path]:
    return sorted(Path(wandb_dir).glob("*/offline-run-*/run-*.wandb"))
