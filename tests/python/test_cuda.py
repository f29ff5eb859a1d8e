"""The CUDA backend as Python sees it: status, tier switch, no crash without a GPU."""
import subprocess
import sys

import pytest

import cppapi
from conftest import module_env


def test_cuda_status_explains_availability():
    status = cppapi.cuda_status()
    assert isinstance(cppapi.cuda_available(), bool)
    assert status
    if not cppapi.cuda_available():
        assert "no CUDA device" in status or "built without CUDA" in status


def test_cuda_tier_switch_round_trips_and_refuses_unknown_names():
    before = cppapi.cuda_tier()
    try:
        cppapi.set_cuda_tier("naive")
        assert cppapi.cuda_tier() == "naive"
        cppapi.set_cuda_tier("fast")
        assert cppapi.cuda_tier() == "fast"
        with pytest.raises(ValueError, match="naive.*fast"):
            cppapi.set_cuda_tier("turbo")
    finally:
        cppapi.set_cuda_tier(before)


def test_import_and_cpu_work_do_not_touch_the_gpu():
    # A fresh interpreter: importing and training on the CPU must work (and
    # exit cleanly) whether or not a driver or device exists.
    code = (
        "import numpy as np, cppapi\n"
        "g = cppapi.Graph()\n"
        "x = g.input(np.ones((2, 3), np.float32))\n"
        "print(cppapi.cuda_available(), float(cppapi.sum(x).item()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=module_env(), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "6.0"
