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


def test_losses_and_their_gradients():
    logits = uniform(5, 3, low=-2, high=2)
    target = np.eye(3)[[0, 2, 1, 1, 0]]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = float(-(target * np.log(p)).sum(axis=1).mean())
    assert values(attnkit.categorical_crossentropy(logits, target, True)).item() == pytest.approx(expected, rel=1e-12)
    grad = attnkit.categorical_crossentropy_backward(logits, target, True)
    check_gradient(lambda: attnkit.categorical_crossentropy(logits, target, True), (grad,), (logits,), 1.0)
    probs, labels = uniform(6, 1, low=0.05, high=0.95), (uniform(6, 1) > 0).astype(np.float64)
    expected = float(-(labels * np.log(probs) + (1 - labels) * np.log(1 - probs)).mean())
    assert values(attnkit.binary_crossentropy(probs, labels)).item() == pytest.approx(expected, rel=1e-6)
    grad = attnkit.binary_crossentropy_backward(probs, labels)
    check_gradient(lambda: attnkit.binary_crossentropy(probs, labels), (grad,), (probs,), 1.0)


def test_layer_norm_and_batch_norm():
    x, gamma, beta = uniform(4, 3, 6), uniform(6), uniform(6)
    r = attnkit.layer_norm(x, gamma, beta)
    mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    np.testing.assert_allclose(values(r.y), (x - mean) / np.sqrt(var + 1e-3) * gamma + beta, rtol=1e-10)
    dy = uniform(*x.shape)
    g = attnkit.layer_norm_backward(x, gamma, r.mean, r.rstd, dy)
    check_gradient(lambda: attnkit.layer_norm(x, gamma, beta).y, (g.dx, g.dgamma, g.dbeta), (x, gamma, beta), dy)

    running_mean, running_var = np.zeros(6), np.ones(6)
    r = attnkit.batch_norm(x, gamma, beta, running_mean, running_var, True)
    flat = x.reshape(-1, 6)
    np.testing.assert_allclose(values(r.y).reshape(-1, 6),
                               (flat - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-3) * gamma + beta, rtol=1e-10)
    np.testing.assert_allclose(running_mean, 0.01 * flat.mean(0), rtol=1e-10)  # updated in place


def test_dropout_keeps_what_its_mask_says():
    x = uniform(50, 40)
    r = attnkit.dropout(x, 0.25, seed=9)
    mask = values(r.mask)
    np.testing.assert_allclose(values(r.y), x * mask / 0.75, rtol=1e-15)
    assert 0.2 < 1 - mask.mean() < 0.3
    np.testing.assert_array_equal(values(attnkit.dropout(x, 0.25, seed=9).mask), mask)
    dy = uniform(50, 40)
    np.testing.assert_allclose(values(attnkit.dropout_backward(dy, r.mask, 0.25)), dy * mask / 0.75, rtol=1e-15)


def test_convolution_pooling_and_shapes():
    x, w, b = uniform(2, 7, 3), uniform(3, 3, 4), uniform(4)
    padded = np.pad(x, ((0, 0), (1, 1), (0, 0)))
    expected = np.stack([np.einsum("bkc,kcf->bf", padded[:, t:t + 3], w) for t in range(7)], axis=1) + b
    y = attnkit.conv1d(x, w, b)
    np.testing.assert_allclose(values(y), expected, rtol=1e-12)
    dy = uniform(2, 7, 4)
    g = attnkit.conv1d_backward(x, w, dy)
    check_gradient(lambda: attnkit.conv1d(x, w, b), (g.dx, g.dweight, g.dbias), (x, w, b), dy)

    pooled = attnkit.max_pool1d(x, 2)
    np.testing.assert_array_equal(values(pooled.y), x[:, :6].reshape(2, 3, 2, 3).max(axis=2))
    dy = uniform(2, 3, 3)
    check_gradient(lambda: attnkit.max_pool1d(x, 2).y, (attnkit.max_pool1d_backward(dy, pooled.argmax, 7),), (x,), dy)

    np.testing.assert_allclose(values(attnkit.mean(x, 1)), x.mean(axis=1), rtol=1e-12)
    np.testing.assert_array_equal(values(attnkit.flip(x, 1)), x[:, ::-1])
    np.testing.assert_array_equal(values(attnkit.transpose(x, 1, 2)), x.transpose(0, 2, 1))
    np.testing.assert_array_equal(values(attnkit.flatten(x)), x.reshape(2, -1))
    a, c = uniform(2, 3), uniform(2, 5)
    joined = attnkit.concat([attnkit.asarray(a), attnkit.asarray(c)], 1)
    np.testing.assert_array_equal(values(joined), np.concatenate([a, c], axis=1))
    parts = attnkit.concat_backward(joined, [3, 5], 1)
    np.testing.assert_array_equal(values(parts[1]), c)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_a_simple_rnn_against_its_equations_and_finite_differences(go_backwards):
    B, T, I, U = 2, 4, 3, 5
    x, kernel, recurrent_kernel, bias = uniform(B, T, I), uniform(I, U), uniform(U, U), uniform(U)
    r = attnkit.recurrent("simple_rnn", x, kernel, recurrent_kernel, bias, return_sequences=True,
                          go_backwards=go_backwards)
    h, states = np.zeros((B, U)), []
    for t in (reversed(range(T)) if go_backwards else range(T)):
        h = np.tanh(x[:, t] @ kernel + h @ recurrent_kernel + bias)
        states.append(h)
    np.testing.assert_allclose(values(r.y), np.stack(states, axis=1), rtol=1e-12)
    np.testing.assert_allclose(values(r.h_last), h, rtol=1e-12)
    dy = uniform(B, T, U)
    options = dict(return_sequences=True, go_backwards=go_backwards)
    g = attnkit.recurrent_backward("simple_rnn", x, kernel, recurrent_kernel, bias, None, None, r, dy, **options)
    check_gradient(lambda: attnkit.recurrent("simple_rnn", x, kernel, recurrent_kernel, bias, **options).y,
                   (g.dx, g.dkernel, g.drecurrent_kernel, g.dbias), (x, kernel, recurrent_kernel, bias), dy)
    with pytest.raises(attnkit.Error, match="unknown recurrent cell"):
        attnkit.recurrent("rnn", x, kernel, recurrent_kernel)


def test_bias_add_and_flatten_backward():
    x, bias = uniform(2, 3, 4), uniform(4)
    np.testing.assert_allclose(values(attnkit.bias_add(x, bias)), x + bias, rtol=1e-15)
    dy = uniform(2, 3, 4)
    np.testing.assert_allclose(values(attnkit.bias_add_backward(dy)), dy.sum(axis=(0, 1)), rtol=1e-12)
    np.testing.assert_array_equal(values(attnkit.flatten_backward(dy.reshape(2, 12), [2, 3, 4])), dy)
