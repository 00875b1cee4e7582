"""The text and sentiment part from Python: jieba's segmenter against python3-jieba itself,
Keras's Tokenizer and pad_sequences against their documented behaviour, and the blog's pipeline
from Python reaching the same test accuracy as the attnkit command with the same data and seed."""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

import attnkit.sentiment
import attnkit.text

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = pathlib.Path(os.environ.get("ATTNKIT_DATA", ROOT.parent / "shared" / "data" / "waimai_10k.csv"))
CLI = pathlib.Path(os.environ.get("ATTNKIT_CLI", ROOT / "build" / "bin" / "attnkit"))


def test_the_segmenter_cuts_as_jieba_does():
    jieba = pytest.importorskip("jieba", reason="python3-jieba is not installed")
    segmenter = attnkit.text.Segmenter()
    for text in ["这家外卖送得很快，味道也不错", "送餐员态度很好，但是菜凉了", "2017年12月买的，价格89.5元还行",
                 "没有送水没有送水没有送水", "我来到北京清华大学"]:
        assert segmenter.cut(text) == jieba.lcut(text), text
        assert segmenter.cut(text, hmm=False) == jieba.lcut(text, HMM=False), text


def test_tokenizer_and_padding_as_keras_defines_them():
    tokenizer = attnkit.text.Tokenizer(num_words=3)
    tokenizer.fit_on_texts(["The cat sat", "the cat, the dog!"])
    # By descending count, ties in order of first appearance, from 1; num_words keeps indices < 3.
    assert tokenizer.words == ["the", "cat", "sat", "dog"]
    assert tokenizer.texts_to_sequences(["the dog sat on the cat"]) == [[1, 1, 2]]
    assert tokenizer.index_of("dog") == 4 and tokenizer.index_of("bird") == 0
    again = attnkit.text.Tokenizer.from_json(tokenizer.to_json())
    assert again.words == tokenizer.words and again.num_words == 3
    padded = np.from_dlpack(attnkit.text.pad_sequences([[1, 2, 3, 4], [5]], 3))
    np.testing.assert_array_equal(padded, [[2, 3, 4], [0, 0, 5]])
    padded = np.from_dlpack(attnkit.text.pad_sequences([[1, 2, 3, 4], [5]], 3, padding="post", truncating="post"))
    np.testing.assert_array_equal(padded, [[1, 2, 3], [5, 0, 0]])


@pytest.mark.skipif(not DATA.exists(), reason=f"no waimai_10k.csv at {DATA} (ATTNKIT_DATA names it)")
def test_the_pipeline_from_python_matches_the_attnkit_command(tmp_path):
    # 300 positive and 300 negative reviews, with the stopword list beside them.
    lines = DATA.read_text(encoding="utf-8").splitlines()
    (tmp_path / "reviews.csv").write_text("\n".join([lines[0]] + lines[1:301] + lines[-300:]) + "\n", encoding="utf-8")
    (tmp_path / "hit_stopwords.txt").write_bytes((DATA.parent / "hit_stopwords.txt").read_bytes())
    csv = str(tmp_path / "reviews.csv")

    dataset = attnkit.sentiment.prepare(csv)
    assert len(dataset.reviews) == 600 and sorted(set(dataset.labels)) == [0, 1]
    assert dataset.x_train.shape == [480, 20] and dataset.x_test.shape == [120, 20]
    result = attnkit.sentiment.train(dataset, model="bilstm-attention", epochs=1, seed=0, verbose=0)
    assert len(result.history["loss"]) == 1
    probabilities = np.from_dlpack(result.model.predict(dataset.x_test))
    accuracy = float((probabilities.argmax(axis=1) == np.array(dataset.test_labels)).mean())
    assert result.test_accuracy == pytest.approx(accuracy, abs=1e-12)
    attnkit.sentiment.save_run(str(tmp_path / "python-run"), result, dataset, csv)
    saved = json.loads((tmp_path / "python-run" / "metrics.json").read_text())
    assert saved["test_accuracy"] == pytest.approx(result.test_accuracy, abs=1e-12)

    if not CLI.exists():
        pytest.skip(f"no attnkit command at {CLI} (ATTNKIT_CLI names it) to compare with")
    subprocess.run([str(CLI), "train", "--data", csv, "--model", "bilstm-attention", "--epochs", "1", "--seed", "0",
                    "--report", str(tmp_path / "cli-run")], check=True, capture_output=True)
    command = json.loads((tmp_path / "cli-run" / "metrics.json").read_text())
    assert command["test_accuracy"] == pytest.approx(result.test_accuracy, abs=1e-12)
    assert command["test_loss"] == pytest.approx(result.test_loss, rel=1e-6)
