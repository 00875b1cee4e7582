"""attnkit.torch: the attention ops as autograd functions, checked with torch.autograd.gradcheck in
float64 and against PyTorch's own attention; and a small PyTorch model that trains through them."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (Debian: python3-torch)")
import attnkit  # noqa: E402
import attnkit.torch as ak  # noqa: E402

generator = torch.Generator().manual_seed(7)


def randn(*shape, grad=True):
    return torch.randn(*shape, generator=generator, dtype=torch.float64).requires_grad_(grad)


def test_tensors_cross_without_copies():
    x = torch.randn(3, 4)
    t = attnkit.from_dlpack(x)
    assert t.dtype == "f32" and t.shape == [3, 4]
    back = torch.from_dlpack(t)
    back[0, 0] = 5.0
    assert x[0, 0].item() == 5.0


def test_sdpa_matches_pytorch_and_passes_gradcheck():
    B, Tq, Tk, H, Hkv, d = 2, 4, 5, 4, 2, 3
    q, k, v = randn(B, Tq, H, d), randn(B, Tk, Hkv, d), randn(B, Tk, Hkv, d)
    out = ak.scaled_dot_product_attention(q, k, v, causal=True)
    # PyTorch's attention, heads first and each key head repeated for its group; top-left causal.
    group = H // Hkv
    mask = torch.ones(Tq, Tk, dtype=torch.bool).tril()
    expected = torch.softmax(
        (q.transpose(1, 2) @ k.transpose(1, 2).repeat_interleave(group, 1).transpose(-1, -2)) / d**0.5
        + torch.zeros(Tq, Tk, dtype=torch.float64).masked_fill(~mask, float("-inf")), dim=-1
    ) @ v.transpose(1, 2).repeat_interleave(group, 1)
    torch.testing.assert_close(out, expected.transpose(1, 2))
    bias = randn(1, H, Tq, Tk)
    key_mask = torch.tensor([[True, True, False, True, True], [True, False, True, True, False]])
    assert torch.autograd.gradcheck(
        lambda q, k, v, bias: ak.scaled_dot_product_attention(q, k, v, key_mask=key_mask, attn_bias=bias,
                                                              softcap=2.0, window=(2, 1)),
        (q, k, v, bias))


def test_sdpa_dropout_draws_the_same_mask_in_the_backward():
    q, k, v = randn(1, 5, 2, 4), randn(1, 6, 2, 4), randn(1, 6, 2, 4)
    seed = torch.Generator().manual_seed(3)
    out = ak.scaled_dot_product_attention(q, k, v, dropout_p=0.3, generator=seed)
    assert torch.autograd.gradcheck(
        lambda q, k, v: ak.scaled_dot_product_attention(q, k, v, dropout_p=0.3,
                                                        generator=torch.Generator().manual_seed(3)),
        (q, k, v))
    without = ak.scaled_dot_product_attention(q, k, v)
    assert not torch.allclose(out, without)


def test_additive_and_gating_attention_pass_gradcheck():
    x, w, b = randn(2, 5, 3), randn(3), randn(5)
    mask = torch.tensor([[1, 1, 0, 1, 1], [1, 0, 1, 1, 0]], dtype=torch.uint8)
    assert torch.autograd.gradcheck(lambda x, w, b: ak.additive_attention(x, w, b, mask)[0], (x, w, b))
    weight, bias = randn(3, 3), randn(3)
    assert torch.autograd.gradcheck(lambda x, weight, bias: ak.gating_attention(x, weight, bias)[0],
                                    (x, weight, bias))
    weight_t, bias_t = randn(5, 5), randn(5)
    for single_vector in (False, True):
        assert torch.autograd.gradcheck(
            lambda x, weight, bias: ak.temporal_gating_attention(x, weight, bias, single_vector=single_vector)[0],
            (x, weight_t, bias_t))


def test_a_pytorch_model_trains_through_attnkit_attention():
    torch.manual_seed(0)

    class Pooling(torch.nn.Module):
        """Embedding, one attnkit self-attention and attnkit's additive pooling, then a logit."""

        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(20, 16)
            self.qkv = torch.nn.Linear(16, 48)
            self.w = torch.nn.Parameter(torch.randn(16) * 0.1)
            self.out = torch.nn.Linear(16, 1)

        def forward(self, ids):
            x = self.embed(ids)
            q, k, v = self.qkv(x).reshape(*ids.shape, 3, 2, 8).unbind(2)
            h = ak.scaled_dot_product_attention(q, k, v).reshape(*ids.shape, 16)
            pooled, _ = ak.additive_attention(h, self.w)
            return self.out(pooled).squeeze(-1)

    # Label: whether token 3 occurs in the sequence.
    ids = torch.randint(0, 20, (64, 7))
    labels = (ids == 3).any(dim=1).float()
    model = Pooling()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(ids), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert np.isfinite(losses).all()
