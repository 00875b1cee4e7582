"""The attention ops from Python against NumPy references written here in float64 (random inputs,
odd sizes, masks), and their backward against central finite differences of the forward."""
import numpy as np
import pytest

import attnkit

rng = np.random.default_rng(20261207)


def uniform(*shape, low=-1.0, high=1.0):
    return rng.uniform(low, high, shape)


# ---------------------------------------------------------------- references

def softmax_rows(scores):
    """Softmax over the last axis where rows may be all -inf (then 0), and the log-sum-exp."""
    top = scores.max(axis=-1, keepdims=True)
    safe = np.where(np.isfinite(top), top, 0.0)
    e = np.exp(scores - safe)
    total = e.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(total > 0, e / total, 0.0)
        lse = np.where(total[..., 0] > 0, safe[..., 0] + np.log(total[..., 0]), -np.inf)
    return p, lse


def sdpa_reference(q, k, v, heads, kv_heads, key_mask=None, causal=False, scale=None, bias=None, alibi=None,
                   softcap=0.0, window=(-1, -1), positions=None, key_count=None):
    """out [B, Tq, H dv] and lse [B, H, Tq] by the definition of attention.h (4.); positions: each
    query's position among the keys (default its index); key_count: keys visible per batch element."""
    B, Tq, _ = q.shape
    Tk = k.shape[1]
    dk, dv = q.shape[2] // heads, v.shape[2] // kv_heads
    qh = q.reshape(B, Tq, heads, dk).transpose(0, 2, 1, 3)
    kh = np.repeat(k.reshape(B, Tk, kv_heads, dk).transpose(0, 2, 1, 3), heads // kv_heads, axis=1)
    vh = np.repeat(v.reshape(B, Tk, kv_heads, dv).transpose(0, 2, 1, 3), heads // kv_heads, axis=1)
    s = (scale if scale is not None else 1 / np.sqrt(dk)) * qh @ kh.transpose(0, 1, 3, 2)
    if softcap > 0:
        s = softcap * np.tanh(s / softcap)
    i = (np.arange(Tq) if positions is None else positions)[:, None]
    j = np.arange(Tk)[None, :]
    if bias is not None:
        s = s + bias
    if alibi is not None:
        s = s - alibi[None, :, None, None] * np.abs(i - j)[None, None]
    hidden = np.zeros((B, 1, Tq, Tk), bool)
    if key_mask is not None:
        hidden |= (key_mask == 0)[:, None, None, :]
    if key_count is not None:
        hidden |= (j[None] >= np.asarray(key_count)[:, None, None])[:, None]
    if causal:
        hidden |= (j > i)[None, None]
    if window[0] >= 0:
        hidden |= (j < i - window[0])[None, None]
    if window[1] >= 0:
        hidden |= (j > i + window[1])[None, None]
    s = np.where(hidden, -np.inf, s)
    p, lse = softmax_rows(s)
    out = (p @ vh).transpose(0, 2, 1, 3).reshape(B, Tq, heads * dv)
    return out, lse


def additive_reference(x, w, b, mask, epsilon):
    e = np.tanh(x @ w + b)
    s = np.exp(e) * mask
    a = s / (s.sum(axis=1, keepdims=True) + epsilon)
    return (a[..., None] * x).sum(axis=1), a


def gating_reference(x, weight, bias):
    probs, _ = softmax_rows(x @ weight + bias)
    return x * probs, probs


def temporal_gating_reference(x, weight, bias, single_vector):
    q, _ = softmax_rows(x.transpose(0, 2, 1) @ weight + bias)  # [B, D, T]
    probs = q.transpose(0, 2, 1)
    if single_vector:
        probs = np.broadcast_to(probs.mean(axis=2, keepdims=True), x.shape)
    return x * probs, probs


def numeric_gradient(loss, array, step=1e-6):
    """Central differences of loss() with respect to every element of array (changed in place)."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        keep = array[index]
        array[index] = keep + step
        up = loss()
        array[index] = keep - step
        down = loss()
        array[index] = keep
        grad[index] = (up - down) / (2 * step)
    return grad


# ---------------------------------------------------------------- scaled dot-product attention

SDPA_CASES = {
    "plain": dict(),
    "causal key mask": dict(causal=True, key_mask=True),
    "grouped heads, bias, ALiBi, softcap": dict(kv_heads=1, bias=True, alibi=True, softcap=1.5),
    "window and key lengths": dict(window=(1, 2), key_lengths=True),
    "scale": dict(scale=0.3),
}


def sdpa_problem(case, B=2, Tq=5, Tk=7, H=2, dk=3, dv=4):
    kv_heads = case.get("kv_heads", H)
    problem = dict(q=uniform(B, Tq, H * dk), k=uniform(B, Tk, kv_heads * dk), v=uniform(B, Tk, kv_heads * dv),
                   heads=H, kv_heads=kv_heads)
    options = dict(num_heads=H, num_kv_heads=kv_heads, causal=case.get("causal", False), scale=case.get("scale"),
                   softcap=case.get("softcap", 0.0), window=case.get("window", (-1, -1)))
    reference = dict(causal=options["causal"], scale=options["scale"], softcap=options["softcap"],
                     window=options["window"])
    key_mask = None
    if case.get("key_mask"):
        key_mask = (rng.uniform(size=(B, Tk)) > 0.3).astype(np.uint8)
        key_mask[1] = 0  # a batch element whose queries see no key
        reference["key_mask"] = key_mask
    if case.get("key_lengths"):
        key_mask = np.array([Tk - 2, 1], np.int32)
        reference["key_count"] = key_mask
    if case.get("bias"):
        options["bias"] = reference["bias"] = uniform(1, H, Tq, Tk, low=-2, high=2)
    if case.get("alibi"):
        slopes = np.array([0.5, 0.125], np.float32)
        options["alibi_slopes"], reference["alibi"] = slopes, slopes.astype(np.float64)
    return problem, key_mask, options, reference


@pytest.mark.parametrize("name", SDPA_CASES)
def test_sdpa_matches_the_definition(name):
    problem, key_mask, options, reference = sdpa_problem(SDPA_CASES[name])
    result = attnkit.scaled_dot_product_attention(problem["q"], problem["k"], problem["v"], key_mask, **options)
    expected_out, expected_lse = sdpa_reference(problem["q"], problem["k"], problem["v"], problem["heads"],
                                                problem["kv_heads"], **reference)
    np.testing.assert_allclose(np.from_dlpack(result.out), expected_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.from_dlpack(result.lse), expected_lse, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", SDPA_CASES)
def test_sdpa_backward_matches_finite_differences(name):
    problem, key_mask, options, _ = sdpa_problem(SDPA_CASES[name], B=2, Tq=3, Tk=4)
    q, k, v = problem["q"], problem["k"], problem["v"]
    bias = options.get("bias")
    if bias is not None:
        options["bias_grad"] = True
    weight = uniform(*q.shape[:2], problem["heads"] * (v.shape[2] // problem["kv_heads"]))

    def loss():
        out = attnkit.scaled_dot_product_attention(q, k, v, key_mask, **options).out
        return float((np.from_dlpack(out) * weight).sum())

    forward = attnkit.scaled_dot_product_attention(q, k, v, key_mask, **options)
    grads = attnkit.scaled_dot_product_attention_backward(q, k, v, key_mask, forward.out, forward.lse, weight,
                                                          **options)
    for got, array in ((grads.dq, q), (grads.dk, k), (grads.dv, v)) + (((grads.dbias, bias),) if bias is not None
                                                                     else ()):
        np.testing.assert_allclose(np.from_dlpack(got), numeric_gradient(loss, array), rtol=1e-6, atol=1e-8)


def test_sdpa_in_float32_and_float16_from_numpy():
    problem, key_mask, options, reference = sdpa_problem(SDPA_CASES["causal key mask"], Tq=9, Tk=11, dk=8, dv=8)
    expected, _ = sdpa_reference(problem["q"], problem["k"], problem["v"], 2, 2, **reference)
    for dtype, tolerance in ((np.float32, 1e-5), (np.float16, 3e-3)):
        q, k, v = (problem[name].astype(dtype) for name in "qkv")
        out = np.from_dlpack(attnkit.scaled_dot_product_attention(q, k, v, key_mask, **options).out)
        assert out.dtype == dtype
        np.testing.assert_allclose(out, expected, rtol=tolerance, atol=tolerance)


def test_sdpa_says_which_path_it_takes():
    problem, _, options, _ = sdpa_problem({})
    support = attnkit.scaled_dot_product_attention_supports(problem["q"], problem["k"], problem["v"], **options)
    assert (support.path, support.why) == ("cpu", "")
    sim = [attnkit.from_dlpack(problem[name].astype(np.float32)).to("sim") for name in "qkv"]
    assert attnkit.scaled_dot_product_attention_supports(*sim, **options).path == "fused"


def test_varlen_attention_is_each_sequence_s_attention():
    H, d = 2, 4
    lengths_q, lengths_k = [3, 0, 5], [4, 2, 6]
    cu_q, cu_k = np.cumsum([0] + lengths_q).astype(np.int32), np.cumsum([0] + lengths_k).astype(np.int32)
    q, k, v = uniform(cu_q[-1], H, d), uniform(cu_k[-1], H, d), uniform(cu_k[-1], H, d)
    result = attnkit.varlen_attention(q, k, v, cu_q, cu_k, causal=True)
    out = np.from_dlpack(result.out)
    for b in range(3):
        if lengths_q[b] == 0:
            continue
        rows_q, rows_k = slice(cu_q[b], cu_q[b + 1]), slice(cu_k[b], cu_k[b + 1])
        expected, _ = sdpa_reference(q[None, rows_q].reshape(1, -1, H * d), k[None, rows_k].reshape(1, -1, H * d),
                                     v[None, rows_k].reshape(1, -1, H * d), H, H, causal=True)
        np.testing.assert_allclose(out[rows_q].reshape(1, -1, H * d), expected, rtol=1e-12, atol=1e-12)


def test_decode_attention_appends_in_place_and_attends_as_the_last_steps():
    B, capacity, H, Hkv, d, Tq, Tn = 2, 12, 4, 2, 3, 2, 2
    lengths = np.array([4, 9], np.int32)
    q = uniform(B, Tq, H * d)
    k_cache, v_cache = uniform(B, capacity, Hkv * d), uniform(B, capacity, Hkv * d)
    k_new, v_new = uniform(B, Tn, Hkv * d), uniform(B, Tn, Hkv * d)
    k_before = k_cache.copy()
    result = attnkit.decode_attention(q, k_cache, v_cache, lengths, k_new, v_new, num_heads=H, num_kv_heads=Hkv,
                                      causal=True)
    out = np.from_dlpack(result.out)
    for b in range(B):
        steps = lengths[b] + Tn
        np.testing.assert_array_equal(k_cache[b, lengths[b]:steps], k_new[b])  # written in place
        np.testing.assert_array_equal(k_cache[b, steps:], k_before[b, steps:])
        expected, _ = sdpa_reference(q[b:b + 1], k_cache[b:b + 1, :steps], v_cache[b:b + 1, :steps], H, Hkv,
                                     causal=True, positions=np.arange(Tq) + steps - Tq)
        np.testing.assert_allclose(out[b:b + 1], expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- additive pooling and gating

def test_additive_attention_and_its_gradient():
    B, T, D = 3, 5, 4
    x, w, b = uniform(B, T, D), uniform(D), uniform(T)
    mask = (rng.uniform(size=(B, T)) > 0.3).astype(np.uint8)
    mask[0] = 0  # a row without steps: weights and output 0
    result = attnkit.additive_attention(x, w, b, mask)
    y, a = additive_reference(x, w, b, mask, 1e-7)
    np.testing.assert_allclose(np.from_dlpack(result.y), y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.from_dlpack(result.weights), a, rtol=1e-12, atol=1e-12)
    dy = uniform(B, D)
    grads = attnkit.additive_attention_backward(x, w, b, result.weights, dy)

    def loss():
        return float((np.from_dlpack(attnkit.additive_attention(x, w, b, mask).y) * dy).sum())

    for got, array in ((grads.dx, x), (grads.dw, w), (grads.db, b)):
        np.testing.assert_allclose(np.from_dlpack(got), numeric_gradient(loss, array), rtol=1e-6, atol=1e-8)


def test_gating_attention_over_features_and_its_gradient():
    x, weight, bias = uniform(3, 4, 5), uniform(5, 5), uniform(5)
    result = attnkit.gating_attention(x, weight, bias)
    y, probs = gating_reference(x, weight, bias)
    np.testing.assert_allclose(np.from_dlpack(result.y), y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.from_dlpack(result.probs), probs, rtol=1e-12, atol=1e-12)
    dy = uniform(*x.shape)
    grads = attnkit.gating_attention_backward(x, weight, result.probs, dy)

    def loss():
        return float((np.from_dlpack(attnkit.gating_attention(x, weight, bias).y) * dy).sum())

    for got, array in ((grads.dx, x), (grads.dweight, weight), (grads.dbias, bias)):
        np.testing.assert_allclose(np.from_dlpack(got), numeric_gradient(loss, array), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("single_vector", [False, True])
def test_temporal_gating_attention_and_its_gradient(single_vector):
    x, weight, bias = uniform(2, 5, 3), uniform(5, 5), uniform(5)
    result = attnkit.temporal_gating_attention(x, weight, bias, single_vector=single_vector)
    y, probs = temporal_gating_reference(x, weight, bias, single_vector)
    np.testing.assert_allclose(np.from_dlpack(result.y), y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.from_dlpack(result.probs), probs, rtol=1e-12, atol=1e-12)
    dy = uniform(*x.shape)
    grads = attnkit.temporal_gating_attention_backward(x, weight, bias, dy, single_vector=single_vector)

    def loss():
        return float((np.from_dlpack(attnkit.temporal_gating_attention(x, weight, bias,
                                                                       single_vector=single_vector).y) * dy).sum())

    for got, array in ((grads.dx, x), (grads.dweight, weight), (grads.dbias, bias)):
        np.testing.assert_allclose(np.from_dlpack(got), numeric_gradient(loss, array), rtol=1e-6, atol=1e-8)


def test_bad_arguments_are_errors_that_name_them():
    x = uniform(2, 3, 8)
    with pytest.raises(attnkit.Error, match="num_kv_heads 3 must divide num_heads 4"):
        attnkit.scaled_dot_product_attention(x, x, x, num_heads=4, num_kv_heads=3)
    with pytest.raises(attnkit.Error, match="unknown kernel"):
        attnkit.scaled_dot_product_attention(x, x, x, kernel="flash")
    with pytest.raises(TypeError):
        attnkit.scaled_dot_product_attention(x, x, x, heads=2)  # not an option's name


def test_packed_self_attention_is_attention_over_its_columns():
    B, T, H, d = 2, 5, 2, 3
    qkv = uniform(B, T, 3 * H * d)
    q, k, v = qkv[..., :H * d], qkv[..., H * d:2 * H * d], qkv[..., 2 * H * d:]
    result = attnkit.packed_self_attention(qkv, num_heads=H, causal=True)
    expected, expected_lse = sdpa_reference(q, k, v, H, H, causal=True)
    np.testing.assert_allclose(np.from_dlpack(result.out), expected, rtol=1e-12, atol=1e-12)
    dout = uniform(B, T, H * d)
    dqkv = np.from_dlpack(attnkit.packed_self_attention_backward(qkv, None, result.out, result.lse, dout, num_heads=H,
                                                                 causal=True))
    grads = attnkit.scaled_dot_product_attention_backward(np.ascontiguousarray(q), np.ascontiguousarray(k),
                                                          np.ascontiguousarray(v), None, result.out, result.lse, dout,
                                                          num_heads=H, causal=True)
    np.testing.assert_allclose(dqkv, np.concatenate([np.from_dlpack(g) for g in (grads.dq, grads.dk, grads.dv)], -1),
                               rtol=1e-12, atol=1e-14)


def test_the_dropout_mask_is_the_one_the_attention_draws():
    B, H, Tq, Tk, rate = 1, 2, 4, 70, 0.3
    mask = np.from_dlpack(attnkit.attention_dropout_mask(B, H, Tq, Tk, dropout=rate, dropout_seed=5))
    assert mask.shape == (B, H, Tq, Tk) and 0.2 < 1 - mask.mean() < 0.4
    # With v the identity over the keys, each output row is the kept probabilities, scaled.
    q, k = uniform(B, Tq, H * 4), uniform(B, Tk, H * 4)
    v = np.tile(np.eye(Tk), (1, H))[None]
    out = np.from_dlpack(attnkit.scaled_dot_product_attention(q, k, v, num_heads=H, dropout=rate,
                                                              dropout_seed=5).out).reshape(B, Tq, H, Tk)
    np.testing.assert_array_equal(out.transpose(0, 2, 1, 3) != 0, mask == 1)


def test_every_attention_op_says_which_path_it_takes():
    x = uniform(1, 4, 8)
    for support in (attnkit.additive_attention_supports(x, uniform(8)),
                    attnkit.gating_attention_supports(uniform(4, 8), uniform(8, 8)),
                    attnkit.temporal_gating_attention_supports(x, uniform(4, 4)),
                    attnkit.varlen_attention_supports(uniform(4, 1, 8), uniform(4, 1, 8), uniform(4, 1, 8),
                                                      np.array([0, 4], np.int32), np.array([0, 4], np.int32)),
                    attnkit.decode_attention_supports(x[:, :1], x, x, np.array([3], np.int32))):
        assert (support.path, support.why) == ("cpu", "")
    sim = attnkit.from_dlpack(x.astype(np.float32)).to("sim")
    weights = attnkit.from_dlpack(uniform(8).astype(np.float32)).to("sim")
    assert attnkit.additive_attention_supports(sim, weights).path == "fused"
