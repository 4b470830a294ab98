"""test_op_fuzz.py's random broadcast shapes on device "cuda": for every elementwise row of the op
table, forward and every gradient on cuda equal the CPU's (``check_op_table_row``).

The ``gpu``-marked test runs on a real device where there is one; the other runs the same check
on the emulated CuPy (see test_emulated_cuda_backend.py for what that can and cannot prove).
"""
import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings

from gradflow import backends
from op_table import OP_CASES
from test_gpu_op_table import check_op_table_row
from test_op_fuzz import broadcast_shapes

ELEMENTWISE = [case for case in OP_CASES if case.elementwise]
ON_DEVICE = settings(max_examples=8, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(HealthCheck))


@pytest.mark.gpu
@pytest.mark.skipif(not backends.is_available(), reason="no usable CUDA device")
@pytest.mark.parametrize("case", ELEMENTWISE, ids=str)
@ON_DEVICE
@given(data=broadcast_shapes(3))
def test_elementwise_rows_on_random_shapes_on_the_gpu(case, data):
    check_op_table_row(dataclasses.replace(case, shapes=data[:len(case.shapes)]))


@pytest.mark.parametrize("case", ELEMENTWISE, ids=str)
@settings(ON_DEVICE, max_examples=2)
@given(data=broadcast_shapes(3))
def test_elementwise_rows_on_random_shapes_on_the_emulated_gpu(emulated_cuda, case, data):
    check_op_table_row(dataclasses.replace(case, shapes=data[:len(case.shapes)]))
