#!/usr/bin/env python3
"""The zoo of attnkit (src/zoo.cpp, MODELS.md) written in Keras 3, timed per training epoch.

The Keras peer of build/bench/attnkit_bench_zoo_epochs and the blog's own stack: the same layers
as the blog (seed 000) builds them, the same synthetic data (9,589 reviews of 20 token ids below
6,000, validation_split=0.2), batch 32, Adam (lr 1e-3, epsilon 1e-7), softmax and categorical
cross-entropy. Each model trains for --repeats epochs in one fit; an epoch's time runs from
on_epoch_begin to on_epoch_end (its validation included, as attnkit's), and the fastest counts
(the first carries TensorFlow's tracing of the step).

    python3 bench/keras_zoo.py [--threads N] [--models a,b] [--repeats N] [--json FILE]

Prints one line per model and, with --json, writes
{"device": "cpu", "keras": ..., "tensorflow": ..., "models": {name: {"seconds": s, "samples_per_second": r}}}.
"""
import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

from zoo_protocol import EMBEDDING, FROZEN, NAMES, REVIEWS, STEPS, VOCABULARY  # noqa: E402


class AdditivePooling(layers.Layer):
    """Seed 000's Attention(step_dim): a = exp(tanh(x w + b)) / (sum + 1e-7); y = sum_t a_t x_t."""

    def build(self, shape):
        self.w = self.add_weight(shape=(shape[-1],), initializer=keras.initializers.RandomUniform(-0.1, 0.1))
        self.b = self.add_weight(shape=(shape[1],), initializer="zeros")

    def call(self, x):
        e = keras.ops.exp(keras.ops.tanh(keras.ops.einsum("btd,d->bt", x, self.w) + self.b))
        a = e / (keras.ops.sum(e, axis=1, keepdims=True) + 1e-7)
        return keras.ops.sum(keras.ops.expand_dims(a, -1) * x, axis=1)


class PositionEmbedding(layers.Layer):
    """A learned [steps, width] table added to the token embeddings."""

    def build(self, shape):
        self.table = self.add_weight(shape=(shape[1], shape[2]),
                                     initializer=keras.initializers.RandomUniform(-0.05, 0.05))

    def call(self, x):
        return x + self.table


def gate(x):
    """Seed 000's Dense(width, softmax) over the features, multiplied with its input."""
    return layers.Multiply()([x, layers.Dense(x.shape[-1], activation="softmax")(x)])


def build(name):
    base = name[: -len("-trainable")] if name.endswith("-trainable") else name
    ids = keras.Input((STEPS,), dtype="int32")
    x = layers.Embedding(VOCABULARY, EMBEDDING, trainable=name not in FROZEN)(ids)
    d = layers.Dropout
    if base == "mlp":
        x = layers.Dense(256, activation="relu")(layers.Flatten()(d(0.25)(x)))
        x = d(0.25)(x)
    elif base == "cnn":
        x = layers.MaxPooling1D(2)(layers.Conv1D(32, 3, padding="same", activation="relu")(d(0.25)(x)))
        x = d(0.25)(layers.Dense(256, activation="relu")(layers.Flatten()(x)))
    elif base in ("rnn", "lstm", "gru"):
        cell = {"rnn": layers.SimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU}[base]
        x = d(0.25)(cell(32)(d(0.25)(x)))
    elif base == "cnn-lstm":
        x = layers.MaxPooling1D(2)(layers.Conv1D(32, 3, padding="same", activation="relu")(d(0.25)(x)))
        x = d(0.25)(layers.LSTM(64)(x))
    elif base == "bilstm":
        x = d(0.25)(layers.Dense(128, activation="relu")(layers.Bidirectional(layers.LSTM(64))(x)))
    elif base == "textcnn":
        branches = [layers.MaxPooling1D(2)(layers.Conv1D(32, k, padding="same", activation="relu")(x))
                    for k in (3, 4, 5)]
        x = d(0.2)(layers.Flatten()(layers.Concatenate()(branches)))
    elif base == "attention":
        x = layers.Flatten()(layers.Dense(64)(gate(x)))
    elif base == "bilstm-attention":
        x = layers.Bidirectional(layers.LSTM(64, return_sequences=True))(x)
        x = layers.Bidirectional(layers.LSTM(64, return_sequences=True))(x)
        x = d(0.2)(layers.Dense(256, activation="relu")(x))
        x = layers.Dense(128, activation="relu")(AdditivePooling()(x))
    elif base == "bigru-attention":
        x = layers.Dense(64, activation="relu")(gate(x))
        x = layers.Dense(16, activation="relu")(layers.Bidirectional(layers.GRU(32))(x))
    elif base == "attention3":
        for _ in range(3):
            x = layers.Dense(EMBEDDING, activation="relu")(gate(x))
        x = layers.Flatten()(x)
    elif base == "transformer":
        # attnkit's one-block encoder: two heads of 16 over the 32 features, padding masked.
        mask = keras.ops.expand_dims(keras.ops.not_equal(ids, 0), 1)
        x = PositionEmbedding()(x)
        attended = d(0.1)(layers.MultiHeadAttention(2, EMBEDDING // 2)(x, x, attention_mask=mask))
        x = layers.LayerNormalization(epsilon=1e-6)(layers.Add()([x, attended]))
        fed = d(0.1)(layers.Dense(EMBEDDING)(layers.Dense(EMBEDDING, activation="relu")(x)))
        x = layers.LayerNormalization(epsilon=1e-6)(layers.Add()([x, fed]))
        x = d(0.1)(layers.Dense(20, activation="relu")(d(0.1)(layers.GlobalAveragePooling1D()(x))))
    else:
        raise SystemExit(f"unknown model {name}")
    return keras.Model(ids, layers.Dense(2, activation="softmax")(x), name=name)


def synthetic_reviews():
    """Token ids with a Zipf-like skew and labels, as bench/zoo_epochs.cpp draws them."""
    u = np.random.default_rng(7).random((REVIEWS, STEPS))
    ids = (1 + 5998.0 * u ** 3).astype("int32")
    return ids, keras.utils.to_categorical(ids[:, 0] % 2, 2)


class EpochTimes(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow's intra-op threads (0: its choice)")
    parser.add_argument("--models", default=",".join(NAMES))
    parser.add_argument("--repeats", type=int, default=1, help="epochs per model; the fastest counts")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.threads > 0:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    ids, labels = synthetic_reviews()
    train = int(REVIEWS * 0.8)  # Keras's validation_split=0.2 keeps int(N * 0.8) for training
    results = {}
    for name in args.models.split(","):
        keras.utils.set_random_seed(0)
        model = build(name)
        model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-7), loss="categorical_crossentropy",
                      metrics=["accuracy"])
        times = EpochTimes()
        model.fit(ids, labels, batch_size=32, epochs=args.repeats, validation_split=0.2, verbose=0,
                  callbacks=[times])
        seconds = min(times.seconds)
        results[name] = {"seconds": seconds, "samples_per_second": train / seconds}
        print(f"{name:28s} {seconds:8.3f} s/epoch {train / seconds:10.0f} samples/s", flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"device": "cpu", "keras": keras.__version__, "tensorflow": tf.__version__,
                       "threads": args.threads, "models": results}, out, indent=1)


if __name__ == "__main__":
    main()
