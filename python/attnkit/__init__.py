"""attnkit from Python: the attention ops of the C++ library, on NumPy arrays and PyTorch tensors.

    import numpy as np
    import attnkit

    x = np.random.default_rng(0).standard_normal((2, 7, 32), dtype=np.float32)
    r = attnkit.scaled_dot_product_attention(x, x, x, num_heads=4, causal=True)
    out = np.from_dlpack(r.out)          # [2, 7, 32], attnkit's memory, no copy

Arrays go in and out without copies through DLPack: any op takes an attnkit.Tensor, a NumPy
array or a PyTorch tensor (contiguous, of a dtype attnkit takes), and a Tensor goes to NumPy with
numpy() or numpy.from_dlpack and to PyTorch with torch.from_dlpack. attnkit.torch wraps the
attention ops as autograd functions; attnkit.zoo builds the sentiment models, which train with
Keras's compile, fit, evaluate and predict.
"""
import sys as _sys

# Everything the module binds (the names of attnkit/ops, Tensor, Model, zoo, Error): see
# _attnkit.pyi for the list with signatures and documentation.
from ._attnkit import *  # noqa: F401,F403
from ._attnkit import Tensor, from_dlpack, layers, sentiment, text, zoo

# `import attnkit.zoo` (and layers, text, sentiment) finds the module's submodules.
for _submodule in (layers, sentiment, text, zoo):
    _sys.modules[__name__ + "." + _submodule.__name__.rsplit(".", 1)[-1]] = _submodule


def asarray(array):
    """array as an attnkit.Tensor: the same Tensor, or any DLPack-capable array wrapped without a
    copy (from_dlpack)."""
    return array if isinstance(array, Tensor) else from_dlpack(array)


__all__ = [name for name in dir() if not name.startswith("_")]
