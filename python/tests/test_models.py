"""Models from Python: a zoo model compiled, trained and evaluated with Keras's methods on a task
it can learn, the same seed giving the same training, predict agreeing with evaluate, and save and
load keeping the predictions."""
import numpy as np
import pytest

import attnkit
import attnkit.zoo


def task(samples, steps=10, vocabulary=30, seed=0):
    """Sequences of tokens 1..vocabulary-1; the class is whether token 7 occurs (one-hot)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocabulary, size=(samples, steps)).astype(np.int32)
    labels = (ids == 7).any(axis=1).astype(np.int64)
    return ids, np.eye(2, dtype=np.float32)[labels]


def trained(seed):
    model = attnkit.zoo.build("bilstm-attention", vocabulary=30, embedding_dim=16, sequence_length=10, seed=seed)
    model.compile(optimizer="adam", learning_rate=0.01)
    x, y = task(1200)
    history = model.fit(x, y, epochs=4, batch_size=32, validation_split=0.2, seed=seed, verbose=0)
    return model, history


def test_the_zoo_lists_its_models():
    names = attnkit.zoo.model_names()
    assert "bilstm-attention" in names and "transformer" in names
    with pytest.raises(attnkit.Error, match="bilstm-attention"):
        attnkit.zoo.build("no-such-model")


def test_a_zoo_model_learns_the_task_and_trains_the_same_from_the_same_seed(tmp_path):
    model, history = trained(seed=3)
    assert sorted(history) == ["accuracy", "loss", "lr", "val_accuracy", "val_loss"]
    assert all(len(values) == 4 for values in history.values())
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.9, history

    _, again = trained(seed=3)
    assert again == history

    x, y = task(300, seed=1)
    probabilities = np.from_dlpack(model.predict(x))
    assert probabilities.shape == (300, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    accuracy = float((probabilities.argmax(axis=1) == y.argmax(axis=1)).mean())
    logs = model.evaluate(x, y)
    assert logs["accuracy"] == pytest.approx(accuracy, abs=1e-9)
    loss = float(-(y * np.log(np.clip(probabilities, 1e-7, 1.0))).sum(axis=1).mean())
    assert logs["loss"] == pytest.approx(loss, rel=1e-4)

    model.save(str(tmp_path / "model"))
    loaded = attnkit.Model.load(str(tmp_path / "model"))
    np.testing.assert_array_equal(np.from_dlpack(loaded.predict(x)), probabilities)
    assert "bidirectional" in loaded.summary().lower()


def test_bad_arguments_are_errors_that_name_them():
    model = attnkit.zoo.build("bilstm-attention", vocabulary=30, sequence_length=10)
    with pytest.raises(attnkit.Error, match="unknown optimizer"):
        model.compile(optimizer="adagrad")
    model.compile()
    x, y = task(10)
    with pytest.raises(attnkit.Error):
        model.fit(x, y[:5], verbose=0)


def test_sequential_and_functional_models_built_from_python_learn_the_task():
    from attnkit import layers

    x, y = task(1200)
    sequential = attnkit.Sequential([10], "i32", seed=2)
    sequential.add(layers.Embedding(30, 16)).add(layers.Conv1D(16, 3, padding="same", activation="relu"))
    sequential.add(layers.GlobalMaxPooling1D()).add(layers.Dense(2, "softmax"))
    sequential.compile(learning_rate=0.01)
    history = sequential.fit(x, y, epochs=4, validation_split=0.2, verbose=0)
    assert history["val_accuracy"][-1] > 0.9, history

    tokens = attnkit.Input([10], "i32", "tokens")
    assert tokens.shape == [10]
    h = layers.Embedding(30, 16)(tokens)
    h = layers.Bidirectional(layers.LSTM(16, return_sequences=True))(h)
    probs = layers.Dense(2, "softmax")(layers.AttentionPooling()(h))
    functional = attnkit.Model(tokens, probs, name="pooling", seed=2)
    functional.compile(learning_rate=0.01)
    history = functional.fit(x, y, epochs=4, validation_split=0.2, verbose=0)
    assert history["val_accuracy"][-1] > 0.9, history
    assert "attention_pooling" in functional.summary().lower()
    with pytest.raises(attnkit.Error):
        functional.fit(np.ones((4, 7), np.int32), y[:4], verbose=0)  # 7 steps where the model takes 10
