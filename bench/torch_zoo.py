#!/usr/bin/env python3
"""The zoo of attnkit (src/zoo.cpp, MODELS.md) written in PyTorch, timed per training epoch.

The peer of build/bench/attnkit_bench_zoo_epochs: the same models, the same synthetic data
(9,589 reviews of 20 token ids below 6,000, the last 20% held out for validation), batch 32,
Adam (lr 1e-3, eps 1e-7), one epoch each. Every model ends in logits and trains with
cross-entropy, PyTorch's usual form of Keras's softmax plus categorical cross-entropy.

    python3 bench/torch_zoo.py [--device cpu|cuda] [--threads N] [--models a,b] [--repeats N] [--json FILE]

Prints one line per model (seconds per epoch, training samples per second) and, with --json,
writes them as {"device": ..., "torch": ..., "models": {name: {"seconds": s, "samples_per_second": r}}}.
"""
import argparse
import json
import time

import torch
from torch import nn

from zoo_protocol import EMBEDDING, FROZEN, NAMES, REVIEWS, STEPS, VOCABULARY


class Gate(nn.Module):
    """Seed 000's Dense(D, softmax) over the features, multiplied with its input."""

    def __init__(self, width):
        super().__init__()
        self.dense = nn.Linear(width, width)

    def forward(self, x):
        return x * torch.softmax(self.dense(x), dim=-1)


class AdditivePooling(nn.Module):
    """Seed 000's Attention(step_dim): a = exp(tanh(x w + b)) / (sum + 1e-7); y = sum_t a_t x_t."""

    def __init__(self, steps, width):
        super().__init__()
        self.w = nn.Parameter(torch.empty(width).uniform_(-0.1, 0.1))
        self.b = nn.Parameter(torch.zeros(steps))

    def forward(self, x):
        e = torch.exp(torch.tanh(x @ self.w + self.b))
        a = e / (e.sum(dim=1, keepdim=True) + 1e-7)
        return (a.unsqueeze(-1) * x).sum(dim=1)


class Last(nn.Module):
    """The last output of a recurrent layer (Keras's return_sequences=False): for a
    bidirectional one, the forward direction's last step and the backward direction's first."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        out, _ = self.rnn(x)
        if not self.rnn.bidirectional:
            return out[:, -1]
        half = out.shape[-1] // 2
        return torch.cat([out[:, -1, :half], out[:, 0, half:]], dim=-1)


class Sequences(nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        return self.rnn(x)[0]


class Conv(nn.Module):
    """Conv1D(filters, kernel, "same", relu) and MaxPool1D(2) on [B, T, C]."""

    def __init__(self, channels, filters, kernel):
        super().__init__()
        self.conv = nn.Conv1d(channels, filters, kernel, padding="same")
        self.pool = nn.MaxPool1d(2)

    def forward(self, x):
        return self.pool(torch.relu(self.conv(x.transpose(1, 2)))).transpose(1, 2)


class TextCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.branches = nn.ModuleList(Conv(EMBEDDING, 32, k) for k in (3, 4, 5))

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.branches], dim=-1)


class Encoder(nn.Module):
    """attnkit's one-block Transformer: position embeddings, two-head self-attention with the
    padding masked, a feed-forward net, residuals with layer norm, the steps averaged."""

    def __init__(self, width=EMBEDDING):
        super().__init__()
        self.position = nn.Parameter(torch.empty(STEPS, width).uniform_(-0.05, 0.05))
        self.attention = nn.MultiheadAttention(width, 2, batch_first=True)
        self.norm1, self.norm2 = nn.LayerNorm(width, eps=1e-6), nn.LayerNorm(width, eps=1e-6)
        self.feed = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
        self.drop = nn.Dropout(0.1)

    def forward(self, x, ids):
        x = x + self.position
        attended, _ = self.attention(x, x, x, key_padding_mask=ids == 0, need_weights=False)
        x = self.norm1(x + self.drop(attended))
        x = self.norm2(x + self.drop(self.feed(x)))
        return x.mean(dim=1)


class ZooModel(nn.Module):
    def __init__(self, name):
        super().__init__()
        base = name[: -len("-trainable")] if name.endswith("-trainable") else name
        self.embedding = nn.Embedding(VOCABULARY, EMBEDDING)
        nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
        self.embedding.weight.requires_grad = name not in FROZEN
        self.encoder = Encoder() if base == "transformer" else None
        d = nn.Dropout
        lstm = lambda i, u, bi=False: nn.LSTM(i, u, batch_first=True, bidirectional=bi)  # noqa: E731
        gru = lambda i, u, bi=False: nn.GRU(i, u, batch_first=True, bidirectional=bi)  # noqa: E731
        body = {
            "mlp": lambda: [d(0.25), nn.Flatten(), nn.Linear(STEPS * EMBEDDING, 256), nn.ReLU(), d(0.25),
                            nn.Linear(256, 2)],
            "cnn": lambda: [d(0.25), Conv(EMBEDDING, 32, 3), nn.Flatten(), nn.Linear(STEPS // 2 * 32, 256), nn.ReLU(),
                            d(0.25), nn.Linear(256, 2)],
            "rnn": lambda: [d(0.25), Last(nn.RNN(EMBEDDING, 32, batch_first=True)), d(0.25), nn.Linear(32, 2)],
            "lstm": lambda: [d(0.25), Last(lstm(EMBEDDING, 32)), d(0.25), nn.Linear(32, 2)],
            "gru": lambda: [d(0.25), Last(gru(EMBEDDING, 32)), d(0.25), nn.Linear(32, 2)],
            "cnn-lstm": lambda: [d(0.25), Conv(EMBEDDING, 32, 3), Last(lstm(32, 64)), d(0.25), nn.Linear(64, 2)],
            "bilstm": lambda: [Last(lstm(EMBEDDING, 64, True)), nn.Linear(128, 128), nn.ReLU(), d(0.25),
                               nn.Linear(128, 2)],
            "textcnn": lambda: [TextCnn(), nn.Flatten(), d(0.2), nn.Linear(STEPS // 2 * 96, 2)],
            "attention": lambda: [Gate(EMBEDDING), nn.Linear(EMBEDDING, 64), nn.Flatten(), nn.Linear(STEPS * 64, 2)],
            "bilstm-attention": lambda: [Sequences(lstm(EMBEDDING, 64, True)), Sequences(lstm(128, 64, True)),
                                         nn.Linear(128, 256), nn.ReLU(), d(0.2), AdditivePooling(STEPS, 256),
                                         nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 2)],
            "bigru-attention": lambda: [Gate(EMBEDDING), nn.Linear(EMBEDDING, 64), nn.ReLU(), Last(gru(64, 32, True)),
                                        nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 2)],
            "attention3": lambda: [m for _ in range(3) for m in (Gate(EMBEDDING), nn.Linear(EMBEDDING, EMBEDDING),
                                                                 nn.ReLU())] + [nn.Flatten(),
                                                                                nn.Linear(STEPS * EMBEDDING, 2)],
            "transformer": lambda: [d(0.1), nn.Linear(EMBEDDING, 20), nn.ReLU(), d(0.1), nn.Linear(20, 2)],
        }[base]
        self.head = nn.Sequential(*body())

    def forward(self, ids):
        x = self.embedding(ids)
        if self.encoder is not None:
            x = self.encoder(x, ids)
        return self.head(x)


def synthetic_reviews(device):
    """Token ids with a Zipf-like skew and labels, as bench/zoo_epochs.cpp draws them."""
    generator = torch.Generator().manual_seed(7)
    u = torch.rand(REVIEWS, STEPS, generator=generator)
    ids = (1 + 5998.0 * u ** 3).long()
    labels = ids[:, 0] % 2
    return ids.to(device), labels.to(device)


def epoch_seconds(name, ids, labels, device):
    torch.manual_seed(0)
    model = ZooModel(name).to(device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3, eps=1e-7)
    loss_of = nn.CrossEntropyLoss()
    train = int(REVIEWS * 0.8)  # Keras's validation_split=0.2: the last 20% validate
    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def step(batch):
        optimizer.zero_grad(set_to_none=True)
        loss_of(model(ids[batch]), labels[batch]).backward()
        optimizer.step()

    model.train()
    order = torch.randperm(train, device=device)
    for begin in range(0, 96, 32):  # a few untimed steps: PyTorch prepares its kernels on first use
        step(order[begin:begin + 32])
    synchronize()
    start = time.perf_counter()
    for begin in range(0, train, 32):
        step(order[begin:begin + 32])
    model.eval()
    with torch.no_grad():
        for begin in range(train, REVIEWS, 32):
            loss_of(model(ids[begin:begin + 32]), labels[begin:begin + 32])
    synchronize()
    return time.perf_counter() - start, train


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's choice)")
    parser.add_argument("--models", default=",".join(NAMES))
    parser.add_argument("--repeats", type=int, default=1, help="epochs per model; the fastest counts")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    ids, labels = synthetic_reviews(args.device)
    results = {}
    for name in args.models.split(","):
        runs = [epoch_seconds(name, ids, labels, args.device) for _ in range(args.repeats)]
        seconds, samples = min(runs)
        results[name] = {"seconds": seconds, "samples_per_second": samples / seconds}
        print(f"{name:28s} {seconds:8.3f} s/epoch {samples / seconds:10.0f} samples/s", flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"device": args.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
                       "models": results}, out, indent=1)


if __name__ == "__main__":
    main()
