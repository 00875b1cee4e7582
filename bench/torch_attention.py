#!/usr/bin/env python3
"""PyTorch's side of bench/attention.cpp: the same attention problems, timed the same way.

    python3 bench/torch_attention.py [--device cuda|cpu] --json FILE

scaled_dot_product_attention (PyTorch's default choice of backend; q, k, v as [B, H, T, d]) in
the training regime (batch 32, length 20, float32, forward plus backward) and, on cuda, the long
regime (16 heads, f16 and bf16, forward and backward apart); additive pooling and the two
gatings in eager PyTorch, forward plus backward. Names match attnkit_bench_attention's with the
engine "torch"; each entry has the seconds per call and the rate in TFLOP or GB per second,
counted as there. In the long regime the same calls also run with PyTorch's cuDNN backend
forced (engine "cudnn"): cuDNN's fused flash attention, forward and backward, which the cuDNN
of that PyTorch holds; a problem it does not take is left out.
"""
import argparse
import contextlib
import json
import time

import torch
import torch.nn.functional as F

try:
    from torch.nn.attention import SDPBackend, sdpa_kernel
except ImportError:  # PyTorch before 2.3: no way to pick the backend
    SDPBackend = sdpa_kernel = None


def seconds_per_call(call, device, repeats):
    call()  # warm-up
    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    synchronize()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        synchronize()
        best = min(best, (time.perf_counter() - start) / repeats)
    return best


def sdpa_train(device, heads, width):
    B, T, d = 32, 20, width // heads
    q, k, v = (torch.rand(B, heads, T, d, device=device, requires_grad=True) for _ in range(3))
    dout = torch.rand(B, heads, T, d, device=device)

    def call():
        F.scaled_dot_product_attention(q, k, v).backward(dout)

    s = seconds_per_call(call, device, 20)
    return {"seconds": s, "TFLOP": 3.5 * 4 * B * heads * T * T * d / s / 1e12}


def sdpa_long(device, dtype, dim, T, causal, backward, backend=None):
    """PyTorch's default backend, or `backend` forced (SDPBackend.CUDNN_ATTENTION)."""
    H, B = 16, min(16, max(1, 16384 // T))
    q, k, v = (torch.rand(B, H, T, dim, device=device, dtype=dtype, requires_grad=True) for _ in range(3))
    dout = torch.rand(B, H, T, dim, device=device, dtype=dtype)

    def attend():
        with sdpa_kernel(backend) if backend is not None else contextlib.nullcontext():
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    if backward:
        # The backward alone: the forward, timed apart, is taken off.
        forward = seconds_per_call(attend, device, 3)
        s = max(seconds_per_call(lambda: attend().backward(dout), device, 3) - forward, 1e-9)
    else:
        with torch.no_grad():
            s = seconds_per_call(attend, device, 3)
    flops = 4.0 * B * H * T * T * dim * (2.5 if backward else 1.0) * (0.5 if causal else 1.0)
    return {"seconds": s, "TFLOP": flops / s / 1e12}


def sdpa_variant(device, dtype, dim, T, variant):
    """Forward plus backward with an additive bias [1, H, T, T] ("bias"), 4 key heads ("gqa4") or
    dropout 0.1 ("dropout"), as bench/attention.cpp's sdpa_variant; None where this PyTorch has no
    enable_gqa."""
    H, B = 16, min(16, max(1, 16384 // T))
    kv_heads = 4 if variant == "gqa4" else H
    q = torch.rand(B, H, T, dim, device=device, dtype=dtype, requires_grad=True)
    k, v = (torch.rand(B, kv_heads, T, dim, device=device, dtype=dtype, requires_grad=True) for _ in range(2))
    dout = torch.rand(B, H, T, dim, device=device, dtype=dtype)
    bias = torch.rand(1, H, T, T, device=device, dtype=dtype) if variant == "bias" else None
    extra = {"enable_gqa": True} if variant == "gqa4" else {"dropout_p": 0.1} if variant == "dropout" else {}
    try:
        F.scaled_dot_product_attention(q[:, :, :1], k[:, :, :1], v[:, :, :1], **extra)
    except TypeError:
        return None

    def call():
        F.scaled_dot_product_attention(q, k, v, attn_mask=bias, **extra).backward(dout)

    s = seconds_per_call(call, device, 3)
    return {"seconds": s, "TFLOP": 3.5 * 4.0 * B * H * T * T * dim / s / 1e12}


def sdpa_varlen_padded(device, dtype, dim, T):
    """bench/attention.cpp's sdpa_varlen as a PyTorch user runs it: the sequences (the same
    lengths) padded to T, the padding hidden by attn_mask; TFLOP counts the sequences' own work."""
    H, B = 16, min(16, max(1, 16384 // T))
    lengths = [T - (b * 7919) % (T - T // 8) for b in range(B)]
    q, k, v = (torch.rand(B, H, T, dim, device=device, dtype=dtype, requires_grad=True) for _ in range(3))
    dout = torch.rand(B, H, T, dim, device=device, dtype=dtype)
    mask = (torch.arange(T, device=device)[None, :] < torch.tensor(lengths, device=device)[:, None])[:, None, None, :]

    def call():
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask).backward(dout)

    s = seconds_per_call(call, device, 3)
    return {"seconds": s, "TFLOP": sum(3.5 * 4.0 * H * n * n * dim for n in lengths) / s / 1e12}


def sdpa_decode(device, dtype, dim, steps, kv_heads):
    """bench/attention.cpp's sdpa_decode as a PyTorch user runs it: the new step written into
    [B, K, C, d] caches by slice assignment, then SDPA over them (one query, 32 heads, batch 8);
    GB counts the caches read once. None where this PyTorch has no enable_gqa."""
    B, H = 8, 32
    q = torch.rand(B, H, 1, dim, device=device, dtype=dtype)
    k_cache, v_cache = (torch.rand(B, kv_heads, steps, dim, device=device, dtype=dtype) for _ in range(2))
    k_new, v_new = (torch.rand(B, kv_heads, 1, dim, device=device, dtype=dtype) for _ in range(2))
    extra = {"enable_gqa": True} if kv_heads != H else {}
    try:
        F.scaled_dot_product_attention(q, k_cache[:, :, :1], v_cache[:, :, :1], **extra)
    except TypeError:
        return None

    def call():
        k_cache[:, :, steps - 1:] = k_new
        v_cache[:, :, steps - 1:] = v_new
        # One query as the last step sees every step: causal adds no mask here.
        return F.scaled_dot_product_attention(q, k_cache, v_cache, **extra)

    with torch.no_grad():
        s = seconds_per_call(call, device, 20)
    element = torch.finfo(dtype).bits / 8
    return {"seconds": s, "GB": element * (2.0 * B * steps * kv_heads * dim + 2.0 * B * H * dim) / s / 1e9}


def additive(device, B, T, D):
    x = torch.rand(B, T, D, device=device, requires_grad=True)
    w = torch.rand(D, device=device, requires_grad=True)
    b = torch.rand(T, device=device, requires_grad=True)
    dy = torch.rand(B, D, device=device)

    def call():
        e = torch.exp(torch.tanh(x @ w + b))
        a = e / (e.sum(dim=1, keepdim=True) + 1e-7)
        (a.unsqueeze(-1) * x).sum(dim=1).backward(dy)

    s = seconds_per_call(call, device, 20 if B * T * D < 1000000 else 3)
    x_bytes = 4.0 * B * T * D
    return {"seconds": s, "GB": (3 * x_bytes + 8.0 * (B * D + B * T)) / s / 1e9}


def gating(device, over_time, B, T, D):
    n = T if over_time else D
    x = torch.rand(B, T, D, device=device, requires_grad=True)
    weight = torch.rand(n, n, device=device, requires_grad=True)
    bias = torch.rand(n, device=device, requires_grad=True)
    dy = torch.rand(B, T, D, device=device)

    def call():
        if over_time:
            probs = torch.softmax(x.transpose(1, 2) @ weight + bias, dim=-1).transpose(1, 2)
        else:
            probs = torch.softmax(x @ weight + bias, dim=-1)
        (x * probs).backward(dy)

    s = seconds_per_call(call, device, 20 if B * T * D < 1000000 else 3)
    return {"seconds": s, "GB": 4.0 * B * T * D * 7 / s / 1e9}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    device = args.device
    results = {}
    for width in (32, 64, 128, 256):
        for heads in (1, 2, 4, 8):
            results[f"sdpa_train/torch/h{heads}/w{width}"] = sdpa_train(device, heads, width)
    for size, (B, T, D) in {"small": (32, 20, 256), "large": (256, 512, 512)}.items():
        results[f"additive/torch/{size}"] = additive(device, B, T, D)
    for size, (B, T, D) in {"small": (32, 20, 32), "large": (8192, 32, 64)}.items():
        results[f"gating_features/torch/{size}"] = gating(device, False, B, T, D)
        results[f"gating_time/torch/{size}"] = gating(device, True, B, T, D)
    if device == "cuda":
        for backward in (False, True):
            for dtype, name in ((torch.float16, "f16"), (torch.bfloat16, "bf16")):
                for dim in (64, 128):
                    for T in (512, 1024, 2048, 4096, 8192):
                        for causal in (False, True):
                            key = (f"sdpa_{'bwd' if backward else 'fwd'}/torch/{name}/d{dim}/t{T}"
                                   + ("/causal" if causal else ""))
                            results[key] = sdpa_long(device, dtype, dim, T, causal, backward)
                            if sdpa_kernel is None:
                                continue
                            try:
                                results[key.replace("/torch/", "/cudnn/")] = sdpa_long(
                                    device, dtype, dim, T, causal, backward, SDPBackend.CUDNN_ATTENTION)
                            except RuntimeError as error:  # no cuDNN kernel for this problem
                                print(key.replace("/torch/", "/cudnn/"), "not run:", str(error).splitlines()[0])
        for dtype, name in ((torch.float16, "f16"), (torch.bfloat16, "bf16")):
            for dim in (64, 128):
                for T in (1024, 4096):
                    for variant in ("bias", "gqa4", "dropout"):
                        entry = sdpa_variant(device, dtype, dim, T, variant)
                        if entry is not None:
                            results[f"sdpa_variant/torch/{name}/d{dim}/t{T}/{variant}"] = entry
                    results[f"sdpa_varlen/torch/{name}/d{dim}/t{T}/padded"] = sdpa_varlen_padded(device, dtype, dim, T)
            for steps in (1024, 8192, 32768):
                for kv_heads in (32, 8):
                    entry = sdpa_decode(device, dtype, 128, steps, kv_heads)
                    if entry is not None:
                        results[f"sdpa_decode/torch/{name}/d128/c{steps}/kv{kv_heads}"] = entry
    with open(args.json, "w") as out:
        json.dump({"device": device, "torch": torch.__version__,
                   "gpu": torch.cuda.get_device_name() if device == "cuda" else None, "results": results}, out, indent=1)
    for key, value in results.items():
        print(key, value)


if __name__ == "__main__":
    main()
