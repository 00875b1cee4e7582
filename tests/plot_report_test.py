"""scripts/plot_report.py on a report folder made here: whole-number epoch ticks, a confusion
matrix whose title stays clear of its colorbar and inside the figure, the attention bars
renormalised over the tokens with the padding's share in the title, and every PNG written."""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import plot_report  # noqa: E402


def main():
    history = {"epoch": [1.0, 2.0, 3.0], "loss": [0.5, 0.4, 0.35], "val_loss": [0.45, 0.42, 0.41]}
    fig = plot_report.curves_figure(history, "loss", "loss")
    fig.canvas.draw()
    ticks = [t for t in fig.axes[0].get_xticks() if 1 <= t <= 3]
    assert ticks and all(t == int(t) for t in ticks), f"epoch ticks {ticks}"

    fig = plot_report.confusion_figure([[1530, 68], [196, 604]], "bilstm-attention-trainable")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    title = fig.axes[0].title.get_window_extent(renderer)
    colorbar = fig.axes[1].get_window_extent(renderer)
    figure = fig.bbox
    assert not title.overlaps(colorbar), "the title runs into the colorbar"
    assert figure.x0 <= title.x0 and title.x1 <= figure.x1 and title.y1 <= figure.y1, "the title is clipped"

    shares, held = plot_report.token_shares([0.1, 0.2, 0.05])
    assert abs(held - 0.35) < 1e-12 and abs(sum(shares) - 1) < 1e-12, (shares, held)
    review = {"kind": "steps", "tokens": ["好吃", "快"], "weights": [0.2, 0.15], "review": "好吃，快",
              "label": 1, "probability_positive": 0.9}
    fig = plot_report.attention_figure({"model": "m", "reviews": [review]})
    heights = [bar.get_height() for bar in fig.axes[0].patches]
    assert abs(sum(heights) - 1) < 1e-9, heights
    assert "padding 65%" in fig.axes[0].get_title(), fig.axes[0].get_title()

    with tempfile.TemporaryDirectory() as directory:
        with open(os.path.join(directory, "history.csv"), "w") as f:
            f.write("epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds\n1,0.5,0.8,0.45,0.82,0.001,1\n"
                    "2,0.4,0.85,0.42,0.84,0.001,1\n")
        with open(os.path.join(directory, "metrics.json"), "w") as f:
            json.dump({"model": "m", "confusion_matrix": [[5, 1], [2, 4]]}, f)
        with open(os.path.join(directory, "attention.json"), "w") as f:
            json.dump({"model": "m", "reviews": [review]}, f)
        plot_report.main(directory)
        for name in ("loss.png", "accuracy.png", "confusion_matrix.png", "attention.png"):
            assert os.path.getsize(os.path.join(directory, name)) > 0, name
    print("plot_report: 7 checks passed")


if __name__ == "__main__":
    main()
