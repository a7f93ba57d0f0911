"""The LSTM wrapper on tiny data: it learns, stops early, saves, loads and exports faithfully."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from missile_classifier.training.models.lstm import LSTMClassifier, export_onnx


def _toy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows whose label is whether the last row's first feature is negative."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5, 3)).astype(np.float32)
    return X, (X[:, -1, 0] < 0).astype(np.float32)


@pytest.fixture(scope="module")
def trained() -> tuple[LSTMClassifier, np.ndarray, np.ndarray]:
    X, y = _toy(1_200, 0)
    X_val, y_val = _toy(300, 1)
    model = LSTMClassifier(5, 3, lstm_units=8, batch_size=64, epochs=15, patience=15).build_model()
    model.train(X, y, X_val, y_val)
    return model, X_val, y_val


def test_loss_falls_and_the_model_learns(
    trained: tuple[LSTMClassifier, np.ndarray, np.ndarray],
) -> None:
    model, X_val, y_val = trained
    history = model.history_
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert min(history.val_loss) < history.val_loss[0]
    assert model.evaluate(X_val, y_val)["f1"] > 0.9
    assert len(history.learning_rate) == len(history.val_loss) == 15


def test_early_stopping_stops_and_keeps_the_best_epoch() -> None:
    X, y = _toy(400, 2)
    X_val, y_val = _toy(100, 3)
    # With a zero learning rate only batch-norm statistics move: validation loss soon stalls
    # and training must stop `patience` epochs after its best epoch, keeping that epoch.
    model = LSTMClassifier(
        5, 3, lstm_units=4, epochs=50, patience=3, learning_rate=0.0
    ).build_model()
    history = model.train(X, y, X_val, y_val)
    # Patience counts from the last epoch that beat the best loss so far by at least 1 %;
    # the weights kept are the lowest loss's, even if it was lower by less than that.
    reference, last_real = np.inf, 0
    for epoch, loss in enumerate(history.val_loss, start=1):
        if loss < reference * (1 - 1e-2):
            reference, last_real = loss, epoch
    assert history.stopped_early and len(history.val_loss) == last_real + 3
    assert history.best_epoch == int(np.argmin(history.val_loss)) + 1


def test_training_is_seeded() -> None:
    X, y = _toy(300, 4)
    runs = [
        LSTMClassifier(5, 3, lstm_units=4, epochs=2, random_state=7).build_model() for _ in range(2)
    ]
    for run in runs:
        run.train(X, y, X, y)
    np.testing.assert_array_equal(runs[0].predict_proba(X), runs[1].predict_proba(X))


def test_save_load_round_trip(
    trained: tuple[LSTMClassifier, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    model, X_val, _ = trained
    loaded = LSTMClassifier.load(model.save(tmp_path / "m.pt"))
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X_val), model.predict_proba(X_val))


def test_onnx_export_matches_torch(
    trained: tuple[LSTMClassifier, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    import onnxruntime as ort

    model, X_val, _ = trained
    difference = export_onnx(model, tmp_path / "m.onnx", X_val)
    assert difference < 1e-5
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for batch in (1, 7, 300):  # the batch axis is dynamic
        out = session.run(None, {"windows": X_val[:batch]})[0]
        np.testing.assert_allclose(out, model.predict_proba(X_val[:batch]), atol=1e-5)


def test_misuse_is_reported() -> None:
    model = LSTMClassifier(5, 3)
    with pytest.raises(RuntimeError, match="build_model"):
        model.predict_proba(np.zeros((1, 5, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"shape \(n, 5, 3\)"):
        model.build_model().predict_proba(np.zeros((1, 4, 3), dtype=np.float32))
