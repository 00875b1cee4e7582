#!/usr/bin/env python3
"""Draws the plots of a training report folder written by `attnkit train --report DIR`:

  loss.png, accuracy.png   training and validation curves per epoch (history.csv)
  confusion_matrix.png     the test confusion matrix as a heatmap (metrics.json)
  attention.png            the attention over the tokens of a few test reviews (attention.json):
                           one bar chart per review, the weights renormalised over the tokens
                           (the padding's share is said in the title), or, for Dense-softmax
                           gating, the gate's weights as a tokens x features heatmap

Usage: plot_report.py DIR. Needs matplotlib (Debian: python3-matplotlib) and, for Chinese
tokens, a CJK font (Debian: fonts-wqy-zenhei).
"""
import csv
import json
import os
import sys
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

# Emoji and variation selectors in reviews have no glyph in the CJK font: they are drawn as boxes,
# without a warning for each.
warnings.filterwarnings("ignore", message="Glyph .* missing from")


def use_cjk_font():
    for name in ("WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans CJK JP", "AR PL UMing CN"):
        if any(f.name == name for f in font_manager.fontManager.ttflist):
            plt.rcParams["font.sans-serif"] = [name] + plt.rcParams["font.sans-serif"]
            plt.rcParams["axes.unicode_minus"] = False
            return


def read_history(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: [float(row[key]) for row in rows] for key in rows[0]} if rows else {}


def curves_figure(history, key, title):
    epochs = history["epoch"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, history[key], "o-", label="train")
    if "val_" + key in history and not all(v != v for v in history["val_" + key]):
        ax.plot(epochs, history["val_" + key], "s--", label="validation")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set_ylabel(key)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_curves(history, key, title, out):
    if key not in history:
        return
    fig = curves_figure(history, key, title)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def confusion_figure(matrix, model):
    # Constrained layout leaves the title and the colorbar their own room.
    fig, ax = plt.subplots(figsize=(4.8, 4.2), constrained_layout=True)
    image = ax.imshow(matrix, cmap="Blues")
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center",
                    color="white" if count > max(map(max, matrix)) / 2 else "black")
    ax.set_xticks(range(len(matrix)))
    ax.set_yticks(range(len(matrix)))
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(f"{model}\ntest confusion matrix", fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.85)
    return fig


def plot_confusion(matrix, model, out):
    fig = confusion_figure(matrix, model)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def token_shares(weights):
    """The tokens' shares of the weight they hold, and that weight (padding holds the rest)."""
    held = sum(weights)
    return ([w / held for w in weights] if held > 0 else list(weights)), held


def attention_figure(attention):
    reviews = attention["reviews"]
    fig, axes = plt.subplots(len(reviews), 1, figsize=(9, 2.6 * len(reviews)), squeeze=False)
    for ax, review in zip(axes[:, 0], reviews):
        tokens = review["tokens"]
        title = f"label {review['label']}, P(positive) = {review['probability_positive']:.2f}: {review['review'][:30]}"
        if review["kind"] == "features":
            gates = list(zip(*review["feature_gates"]))  # features x tokens
            ax.imshow(gates, aspect="auto", cmap="viridis")
            ax.set_ylabel("feature")
        else:
            # Padding takes the rest of the weight: shown as the tokens' shares, and said.
            shares, held = token_shares(review["weights"])
            ax.bar(range(len(tokens)), shares, color="tab:orange")
            ax.set_ylabel("share of the tokens'")
            title += f"\ntokens {held:.0%} of the weight, padding {1 - held:.0%}: bars renormalised over the tokens"
        ax.set_xticks(range(len(tokens)))
        ax.set_xticklabels(tokens, fontsize=9)
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"{attention['model']}: attention over the tokens of test reviews")
    fig.tight_layout()
    return fig


def plot_attention(attention, out):
    if not attention.get("reviews"):
        return False
    fig = attention_figure(attention)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def main(directory):
    use_cjk_font()
    written = []
    history_path = os.path.join(directory, "history.csv")
    if os.path.exists(history_path):
        history = read_history(history_path)
        for key, title in (("loss", "loss"), ("accuracy", "accuracy")):
            out = os.path.join(directory, key + ".png")
            plot_curves(history, key, title, out)
            written.append(out)
    metrics_path = os.path.join(directory, "metrics.json")
    if os.path.exists(metrics_path):
        with open(metrics_path) as f:
            metrics = json.load(f)
        out = os.path.join(directory, "confusion_matrix.png")
        plot_confusion(metrics["confusion_matrix"], metrics["model"], out)
        written.append(out)
    attention_path = os.path.join(directory, "attention.json")
    if os.path.exists(attention_path):
        with open(attention_path) as f:
            attention = json.load(f)
        out = os.path.join(directory, "attention.png")
        if plot_attention(attention, out):
            written.append(out)
    print("plots: " + ", ".join(os.path.basename(p) for p in written))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: plot_report.py REPORT_DIR")
    main(sys.argv[1])
