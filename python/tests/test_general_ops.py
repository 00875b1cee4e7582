"""The general ops from Python (linear, matmul, activations, softmax, multiply, add, embedding)
against NumPy in float64, and their backward against finite differences."""
import numpy as np
import pytest

import attnkit
from test_ops import numeric_gradient, uniform


def values(tensor):
    return np.from_dlpack(tensor)


def check_gradient(forward, backward_grads, arrays, weight):
    """Each array's gradient of sum(forward() * weight), from backward_grads, against central
    differences."""
    def loss():
        return float((values(forward()) * weight).sum())

    for got, array in zip(backward_grads, arrays):
        np.testing.assert_allclose(values(got), numeric_gradient(loss, array), rtol=1e-6, atol=1e-8)


def test_linear_and_matmul():
    x, w, b = uniform(3, 5, 4), uniform(4, 6), uniform(6)
    y = attnkit.linear(x, w, b)
    np.testing.assert_allclose(values(y), x @ w + b, rtol=1e-12)
    dy = uniform(3, 5, 6)
    g = attnkit.linear_backward(x, w, dy)
    check_gradient(lambda: attnkit.linear(x, w, b), (g.dx, g.dweight, g.dbias), (x, w, b), dy)
    assert attnkit.linear_backward(x, w, dy, has_bias=False, needs_dx=False).dx is None

    a, c = uniform(2, 3, 5), uniform(2, 4, 5)
    np.testing.assert_allclose(values(attnkit.matmul(a, c, transpose_b=True)), a @ c.transpose(0, 2, 1), rtol=1e-12)
    dc = uniform(2, 3, 4)
    g = attnkit.matmul_backward(a, c, dc, transpose_b=True)
    check_gradient(lambda: attnkit.matmul(a, c, transpose_b=True), (g.da, g.db), (a, c), dc)


@pytest.mark.parametrize("name", ["linear", "relu", "tanh", "sigmoid", "softmax"])
def test_activations(name):
    x = uniform(4, 7, low=-2, high=2)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    expected = {"linear": x, "relu": np.maximum(x, 0), "tanh": np.tanh(x), "sigmoid": 1 / (1 + np.exp(-x)),
                "softmax": e / e.sum(axis=-1, keepdims=True)}[name]
    y = attnkit.activation(x, name)
    np.testing.assert_allclose(values(y), expected, rtol=1e-12, atol=1e-15)
    dy = uniform(4, 7)
    check_gradient(lambda: attnkit.activation(x, name), (attnkit.activation_backward(y, dy, name),), (x,), dy)


@pytest.mark.parametrize("axis", [0, -1])
def test_softmax_and_log_softmax_over_an_axis(axis):
    x = uniform(3, 5, 4, low=-3, high=3)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    p = e / e.sum(axis=axis, keepdims=True)
    y, log_y = attnkit.softmax(x, axis), attnkit.log_softmax(x, axis)
    np.testing.assert_allclose(values(y), p, rtol=1e-12)
    np.testing.assert_allclose(values(log_y), np.log(p), rtol=1e-12, atol=1e-12)
    dy = uniform(*x.shape)
    check_gradient(lambda: attnkit.softmax(x, axis), (attnkit.softmax_backward(y, dy, axis),), (x,), dy)
    check_gradient(lambda: attnkit.log_softmax(x, axis), (attnkit.log_softmax_backward(log_y, dy, axis),), (x,), dy)


def test_multiply_add_and_embedding():
    a, b = uniform(3, 4), uniform(3, 4)
    np.testing.assert_allclose(values(attnkit.multiply(a, b)), a * b, rtol=1e-15)
    np.testing.assert_allclose(values(attnkit.add(a, b)), a + b, rtol=1e-15)
    dy = uniform(3, 4)
    g = attnkit.multiply_backward(a, b, dy)
    check_gradient(lambda: attnkit.multiply(a, b), (g.da, g.db), (a, b), dy)

    table = uniform(9, 3)
    ids = np.array([[1, 4, 1], [8, 0, 4]], np.int32)
    np.testing.assert_array_equal(values(attnkit.embedding(ids, table)), table[ids])
    dy = uniform(2, 3, 3)
    expected = np.zeros_like(table)
    np.add.at(expected, ids, dy)
    np.testing.assert_allclose(values(attnkit.embedding_backward(ids, dy, 9)), expected, rtol=1e-15)
    with pytest.raises(attnkit.Error, match="relu|activation"):
        attnkit.activation(a, "gelu-ish")
