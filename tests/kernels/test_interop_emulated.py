"""``np.asarray`` on a CUDA tensor (issue 17), on the emulated CuPy: refused, with the fix in the message."""
import numpy as np
import pytest

import gradflow as gf


def test_numpy_asarray_refuses_a_cuda_tensor_and_names_cpu(emulated_cuda):
    t = gf.ones(2, device="cuda", requires_grad=True)
    with pytest.raises(gf.DeviceError, match=r"tensor on cuda:0 to a NumPy array implicitly; call \.cpu\(\) first"):
        np.asarray(t)
    assert np.asarray(t.cpu()).tolist() == [1.0, 1.0]
