"""GPU pinning for the local multi-GPU profile, on CPU with simulated device counts."""

import os
import subprocess
import sys
import textwrap

import pytest

from infcop.core import devices


def test_claims_distinct_devices_until_all_are_taken(tmp_path):
    got = [devices.claim_gpu(3, tmp_path) for _ in range(3)]
    assert got == [0, 1, 2]
    with pytest.raises(TimeoutError, match="all 3 GPUs stayed claimed.*--resources gpu=3"):
        devices.claim_gpu(3, tmp_path, timeout=0.2, poll=0.05)
    for f in devices._held[-3:]:
        f.close()  # the process "exits": its claims are released
    del devices._held[-3:]
    assert devices.claim_gpu(3, tmp_path) == 0
    devices._held.pop().close()


def test_concurrent_processes_get_different_gpus(tmp_path):
    script = textwrap.dedent(f"""
        import os, sys, time
        from infcop.core.devices import pin_gpu
        os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        pin_gpu(count=4, lock_dir=__import__("pathlib").Path({str(tmp_path)!r}))
        print(os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
        time.sleep(3)
    """)
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    seen = [p.stdout.readline().strip() for p in procs]
    for p in procs:
        p.wait()
    assert sorted(seen) == ["0", "1", "2"]


def test_respects_scheduler_choice_and_claims_one_gpu_like_several(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5")
    assert devices.pin_gpu(count=8, lock_dir=tmp_path) is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # unset for pin_gpu; restored after the test
    assert (
        devices.pin_gpu(count=0, lock_dir=tmp_path) is None
        and os.environ["CUDA_VISIBLE_DEVICES"] == ""
    )
    assert (
        devices.pin_gpu(count=1, lock_dir=tmp_path) == 0
        and os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    )
    with pytest.raises(TimeoutError):  # the one GPU's one slot is taken
        devices.claim_gpu(1, tmp_path, timeout=0.1, poll=0.05)
    devices._held.pop().close()


def test_k_jobs_per_gpu_fill_every_gpu_first_slots_first(tmp_path, monkeypatch):
    monkeypatch.setenv("INFCOP_JOBS_PER_GPU", "2")
    got = [devices.claim_gpu(3, tmp_path, per_gpu=devices.jobs_per_gpu()) for _ in range(6)]
    assert got == [0, 1, 2, 0, 1, 2]
    with pytest.raises(TimeoutError, match="--resources gpu=6"):
        devices.claim_gpu(3, tmp_path, timeout=0.1, poll=0.05, per_gpu=2)
    for f in devices._held[-6:]:
        f.close()
    del devices._held[-6:]
    monkeypatch.setenv("INFCOP_JOBS_PER_GPU", "0")
    with pytest.raises(ValueError, match="INFCOP_JOBS_PER_GPU"):
        devices.jobs_per_gpu()
