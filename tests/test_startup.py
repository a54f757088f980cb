"""A training job's start-up imports what it uses: torch's compiler stack (about 2 s of every job's
start) is not imported to set the kernels torch uses by default."""

import subprocess
import sys

PROBE = """
import sys, torch
from infcop.core.train import resolve_device
resolve_device("cpu", deterministic={det})
print("torch._dynamo" in sys.modules, torch.are_deterministic_algorithms_enabled())
"""


def start(deterministic: bool) -> tuple[str, str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(det=deterministic)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    compiler, det = out.split()
    return compiler, det


def test_default_kernels_do_not_import_the_compiler():
    assert start(deterministic=False) == ("False", "False")


def test_deterministic_kernels_are_set():
    assert start(deterministic=True)[1] == "True"
