"""The NumPy backend fixes glibc's mmap and trim thresholds (the note [heap trimming] in
gradflow/backends/heap.py): a step's few-hundred-KiB temporaries stop faulting their pages in again."""
import os
import platform
import subprocess
import sys

import pytest

from gradflow.backends import heap

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="glibc's mallopt")

# Eight 280 KB arrays made and freed together, as a small CNN's step makes its temporaries.
CHURN = """
import resource, numpy as np, gradflow
def step():
    arrays = [np.ones(70_000, np.float32) for _ in range(8)]
for _ in range(5):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 50)
"""


def _faults_per_step(policy):
    env = dict(os.environ, GRADFLOW_MALLOC=policy)
    done = subprocess.run([sys.executable, "-c", CHURN], capture_output=True, text=True, env=env, check=True)
    return float(done.stdout)


def test_a_step_of_temporaries_faults_no_pages_in():
    tuned, default = _faults_per_step("tuned"), _faults_per_step("default")
    assert tuned < 5, tuned
    assert default > 100, default   # glibc's own policy gives 2.2 MB back every step: ~540 faults


def test_default_policy_is_left_alone(monkeypatch):
    monkeypatch.setenv("GRADFLOW_MALLOC", "default")
    assert heap.tune() is False
    monkeypatch.delenv("GRADFLOW_MALLOC")
    assert heap.tune() is True   # idempotent: the same thresholds again
