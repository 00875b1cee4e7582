"""attnkit's attention ops as PyTorch autograd functions: they take and return torch tensors
(shared with attnkit through DLPack, without copies), and their backward runs attnkit's, so they
drop into a PyTorch model and train.

    import torch, attnkit.torch as ak
    q = torch.randn(2, 9, 4, 16, requires_grad=True)      # [B, Tq, H, d], as flash_attn_func
    out = ak.scaled_dot_product_attention(q, q, q, causal=True)
    out.sum().backward()

Layouts are attnkit's: q [B, Tq, H, dk], k [B, Tk, Hkv, dk], v [B, Tk, Hkv, dv] and out
[B, Tq, H, dv] (from PyTorch's [B, H, T, d], .transpose(1, 2)). Tensors are made contiguous
first where they are not. float32 and float64 on the cpu, float16 and bfloat16 too on a GPU.
"""
import torch as _torch

import attnkit as _ak


def _in(tensor):
    """A torch tensor as an attnkit Tensor over the same memory (None stays None)."""
    if tensor is None:
        return None
    if tensor.dtype == _torch.bool:
        tensor = tensor.to(_torch.uint8)  # DLPack's bool is not taken by every PyTorch
    return _ak.from_dlpack(tensor.detach().contiguous())


def _out(tensor):
    """An attnkit Tensor as a torch tensor over the same memory (None stays None)."""
    return None if tensor is None else _torch.from_dlpack(tensor)


class _ScaledDotProductAttention(_torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, bias, key_mask, options):
        B, Tq, H, dk = q.shape
        Tk, Hkv, dv = k.shape[1], k.shape[2], v.shape[3]
        options = dict(options, num_heads=H, num_kv_heads=Hkv, bias_grad=bias is not None and bias.requires_grad)
        args = (_in(q.reshape(B, Tq, H * dk)), _in(k.reshape(B, Tk, Hkv * dk)), _in(v.reshape(B, Tk, Hkv * dv)),
                _in(key_mask))
        result = _ak.scaled_dot_product_attention(*args, bias=_in(bias), **options)
        ctx.args, ctx.bias, ctx.options = args, _in(bias), options
        ctx.result = result
        ctx.shapes = (q.shape, k.shape, v.shape)
        return _out(result.out).reshape(B, Tq, H, dv)

    @staticmethod
    def backward(ctx, dout):
        (B, Tq, H, dv) = dout.shape
        grads = _ak.scaled_dot_product_attention_backward(
            *ctx.args, ctx.result.out, ctx.result.lse, _in(dout.reshape(B, Tq, H * dv)), bias=ctx.bias, **ctx.options)
        q_shape, k_shape, v_shape = ctx.shapes
        return (_out(grads.dq).reshape(q_shape), _out(grads.dk).reshape(k_shape), _out(grads.dv).reshape(v_shape),
                _out(grads.dbias), None, None)


def scaled_dot_product_attention(q, k, v, *, key_mask=None, causal=False, scale=None, attn_bias=None,
                                 alibi_slopes=None, softcap=0.0, window=(-1, -1), attention_mask=None,
                                 dropout_p=0.0, generator=None):
    """Multi-head attention of q [B, Tq, H, dk] over k [B, Tk, Hkv, dk] and v [B, Tk, Hkv, dv]
    (Hkv dividing H: grouped or multi-query heads), returning out [B, Tq, H, dv].

    key_mask: bool or uint8 [B, Tk] (False hides the key) or int32 key lengths [B]; causal:
    query i sees keys 0..i; scale: 1/sqrt(dk) unless given; attn_bias: float [B or 1, H or 1,
    Tq, Tk] added to the scores (-inf hides), differentiated when it requires grad;
    alibi_slopes: float32 [H]; softcap: cap tanh(s / cap); window: (left, right) keys around
    each query, -1 for no bound; attention_mask: bool or uint8 [B or 1, Tq, Tk]; dropout_p:
    dropout of the probabilities, its seed drawn from `generator` (torch's default one if None),
    the backward drawing the same mask again.
    """
    options = dict(causal=causal, scale=scale, softcap=softcap, window=tuple(window),
                   alibi_slopes=_in(alibi_slopes), attention_mask=_in(attention_mask))
    if dropout_p > 0:
        seed = int(_torch.randint(0, 2**62, (1,), generator=generator).item())
        options.update(dropout=dropout_p, dropout_seed=seed, dropout_offset=0)
    return _ScaledDotProductAttention.apply(q, k, v, attn_bias, key_mask, options)


class _AdditiveAttention(_torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, mask, return_sequences, epsilon):
        args = (_in(x), _in(w), _in(b))
        result = _ak.additive_attention(*args, _in(mask), return_sequences=return_sequences, epsilon=epsilon)
        ctx.args, ctx.weights, ctx.options = args, result.weights, dict(return_sequences=return_sequences,
                                                                       epsilon=epsilon)
        weights = _out(result.weights)
        ctx.mark_non_differentiable(weights)
        return _out(result.y), weights

    @staticmethod
    def backward(ctx, dy, dweights):
        grads = _ak.additive_attention_backward(*ctx.args, ctx.weights, _in(dy), **ctx.options)
        return _out(grads.dx), _out(grads.dw), _out(grads.db), None, None, None


def additive_attention(x, w, b=None, mask=None, *, return_sequences=False, epsilon=1e-7):
    """Additive tanh-softmax pooling of x [B, T, D] (the Keras tutorials' Attention layer):
    e_t = tanh(x_t . w + b_t), a = the masked softmax of e (epsilon added to its sum),
    y = sum_t a_t x_t [B, D] (or a_t x_t [B, T, D] with return_sequences). Returns (y, a)."""
    return _AdditiveAttention.apply(x, w, b, mask, return_sequences, epsilon)


class _GatingAttention(_torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        args = (_in(x), _in(weight))
        result = _ak.gating_attention(*args, _in(bias))
        ctx.args, ctx.probs, ctx.has_bias = args, result.probs, bias is not None
        probs = _out(result.probs)
        ctx.mark_non_differentiable(probs)
        return _out(result.y), probs

    @staticmethod
    def backward(ctx, dy, dprobs):
        grads = _ak.gating_attention_backward(*ctx.args, ctx.probs, _in(dy), has_bias=ctx.has_bias)
        return _out(grads.dx), _out(grads.dweight), _out(grads.dbias)


def gating_attention(x, weight, bias=None):
    """Dense-softmax gating over the features of x [..., D]: probs = softmax(x weight + bias),
    y = x probs. Returns (y, probs)."""
    return _GatingAttention.apply(x, weight, bias)


class _TemporalGatingAttention(_torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, single_vector):
        args = (_in(x), _in(weight), _in(bias))
        result = _ak.temporal_gating_attention(*args, single_vector=single_vector)
        ctx.args, ctx.single_vector = args, single_vector
        probs = _out(result.probs)
        ctx.mark_non_differentiable(probs)
        return _out(result.y), probs

    @staticmethod
    def backward(ctx, dy, dprobs):
        grads = _ak.temporal_gating_attention_backward(*ctx.args, _in(dy), single_vector=ctx.single_vector)
        return _out(grads.dx), _out(grads.dweight), _out(grads.dbias), None


def temporal_gating_attention(x, weight, bias=None, *, single_vector=False):
    """Dense-softmax gating over the steps of x [B, T, D], weight [T, T]: a distribution over
    time per feature (with single_vector, their mean, shared by the features). Returns
    (y, probs)."""
    return _TemporalGatingAttention.apply(x, weight, bias, single_vector)
