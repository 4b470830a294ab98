"""One BLAS thread pool in a gradflow process (the note [one BLAS pool] in numpy_special.py).

The pool check runs in a fresh interpreter with library-default threads: this test process has
SciPy loaded already (the op table's references), and a pool, once started, never goes away.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.special

from gradflow.backends import numpy_special

threadpoolctl = pytest.importorskip("threadpoolctl")

TRAINING_STEP = """
import json, sys
import numpy as np
import threadpoolctl
import gradflow as gf
import gradflow.nn.functional as F

rng = np.random.default_rng(0)
model = gf.nn.MLP([784, 256, 10])
optimizer = gf.optim.SGD(model.parameters(), lr=0.01)
x = gf.tensor(rng.standard_normal((64, 784)).astype(np.float32))
labels = gf.tensor(rng.integers(0, 10, 64))
for zero_grad in (True, False, False):  # the last steps add into .grad (gemm with beta = 1)
    if zero_grad:
        optimizer.zero_grad()
    F.cross_entropy(model(x), labels).backward()
    optimizer.step()
pools = [{"file": p["filepath"], "api": p["user_api"], "threads": p["num_threads"]}
         for p in threadpoolctl.threadpool_info()]
print(json.dumps({"pools": pools, "scipy": sorted(m for m in sys.modules if m.startswith("scipy"))}))
"""


def test_import_and_a_training_step_run_one_blas_pool():
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_NUM_THREADS") and k not in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS")}
    env["GRADFLOW_DEVICE"] = "cpu"
    done = subprocess.run([sys.executable, "-c", TRAINING_STEP], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    blas = [p for p in report["pools"] if p["api"] == "blas"]
    threaded = [p for p in blas if p["threads"] > 1]
    assert len(threaded) <= 1, f"more than one multi-threaded BLAS pool: {blas}"
    assert len(blas) <= 1, f"expected NumPy's BLAS alone, found {blas}"
    assert not report["scipy"], f"a ReLU MLP step imported SciPy: {report['scipy']}"


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_expit_matches_scipy_to_a_few_ulps(dtype):
    x = np.concatenate([np.linspace(-120, 120, 4001), [np.inf, -np.inf, np.nan, 0.0, -0.0]]).astype(dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # no exp overflow for large |x|
        got = numpy_special.expit(x)
    want = scipy.special.expit(x)
    assert got.dtype == dtype
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    normal = np.isfinite(want) & (want > np.finfo(dtype).tiny)
    relative = np.abs(got[normal].astype(np.float64) - want[normal]) / want[normal]
    assert relative.max() <= 3 * np.finfo(dtype).eps
    rest = ~normal & ~np.isnan(want)  # 0, 1 and subnormal results: equal to within the smallest normal
    np.testing.assert_allclose(got[rest], want[rest], rtol=0, atol=np.finfo(dtype).tiny)
    inplace = x.copy()
    assert numpy_special.expit(inplace, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, got)


def test_erf_is_scipys():
    x = np.linspace(-4, 4, 101)
    np.testing.assert_array_equal(numpy_special.erf(x), scipy.special.erf(x))
    out = np.empty_like(x)
    assert numpy_special.erf(x, out=out) is out
