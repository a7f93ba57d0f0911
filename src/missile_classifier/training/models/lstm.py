"""The LSTM classifier: a bidirectional LSTM over each row's window, trained with torch.

The network reads the window of the ``sequence_length`` rows ending at a row (past rows only,
so the bidirectional reading stays causal in time) and outputs the probability that this row
is in reentry.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import logging
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from missile_classifier.progress import on_terminal, progress_bar
from missile_classifier.scoring.features import N_FEATURES
from missile_classifier.training.config import TrainConfig
from missile_classifier.training.metrics import classification_metrics

log = logging.getLogger("missile_classifier.training")

#: Batch norm's variance floor. An LSTM unit that stays ~0 on all training windows has a
#: running variance of ~1e-9; with torch's default 1e-5 batch norm multiplied its output by up
#: to ~300, so the unit waking on one unusual window flipped that row to p = 1.0 (a ballistic
#: test stream called reentry at 663 km, docs/training.md). 1e-2 caps the gain at 10 × its
#: learned scale.
BATCH_NORM_EPS = 1e-2
#: Early stopping: a validation loss at least this share below the best so far is progress.
MIN_RELATIVE_IMPROVEMENT = 1e-2


class ReentryNet(nn.Module):
    """Bidirectional LSTM → batch norm → dropout → dense → logit (sigmoid applied outside)."""

    def __init__(self, n_features: int, lstm_units: int, dropout: float) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_features, lstm_units, batch_first=True, bidirectional=True)
        self.norm = nn.BatchNorm1d(2 * lstm_units, eps=BATCH_NORM_EPS)
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(2 * lstm_units, lstm_units),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(lstm_units, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(batch,)`` for windows of shape ``(batch, sequence, features)``."""
        out, _ = self.lstm(x)
        # Forward direction at the last step (has read the whole window) joined with the
        # backward direction at the first step (likewise).
        units = out.shape[-1] // 2
        summary = torch.cat([out[:, -1, :units], out[:, 0, units:]], dim=1)
        logits: torch.Tensor = self.head(self.norm(summary)).squeeze(-1)
        return logits


class ProbabilityNet(nn.Module):
    """The trained network with the sigmoid included: what ONNX export ships."""

    def __init__(self, net: ReentryNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities of shape ``(batch,)``."""
        return torch.sigmoid(self.net(x))


@dataclass
class History:
    """Per-epoch training record."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    seconds: float = 0.0


class LSTMClassifier:
    """Reentry classifier with the seed's interface and scikit-learn's conventions.

    Args:
        sequence_length: Rows per window.
        n_features: Features per row.
        lstm_units: Hidden units per LSTM direction.
        dropout: Dropout rate of the dense head.
        learning_rate: Adam's initial learning rate (halved when validation loss stalls).
        batch_size: Windows per gradient step.
        epochs: Maximum epochs; early stopping usually ends sooner.
        patience: Epochs without validation improvement before stopping.
        class_weight: ``"balanced"`` weighs positives by negatives/positives; ``None`` does not.
        random_state: Seed of weights initialisation and shuffling.
        verbose: Show a progress bar per epoch.
    """

    def __init__(
        self,
        sequence_length: int = TrainConfig.sequence_length,
        n_features: int = N_FEATURES,
        lstm_units: int = TrainConfig.lstm_units,
        dropout: float = 0.3,
        learning_rate: float = TrainConfig.learning_rate,
        batch_size: int = TrainConfig.batch_size,
        epochs: int = TrainConfig.epochs,
        patience: int = TrainConfig.patience,
        class_weight: str | None = "balanced",
        random_state: int = TrainConfig.seed,
        verbose: bool = TrainConfig.verbose,
    ) -> None:
        self.sequence_length = sequence_length
        self.n_features = n_features
        self.lstm_units = lstm_units
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.class_weight = class_weight
        self.random_state = random_state
        self.verbose = verbose

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (scikit-learn convention)."""
        names = inspect.signature(type(self)).parameters
        return {name: getattr(self, name) for name in names}

    def build_model(self) -> LSTMClassifier:
        """Create the network with seeded initial weights."""
        torch.manual_seed(self.random_state)
        self.model_ = ReentryNet(self.n_features, self.lstm_units, self.dropout)
        return self

    def _check_built(self) -> ReentryNet:
        if not hasattr(self, "model_"):
            raise RuntimeError("LSTMClassifier has no network: call build_model() or load()")
        return self.model_

    def _check_input(self, X: np.ndarray) -> torch.Tensor:
        expected = (self.sequence_length, self.n_features)
        if X.ndim != 3 or X.shape[1:] != expected:
            raise ValueError(
                f"expected windows of shape (n, {expected[0]}, {expected[1]}), got {X.shape}"
            )
        return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))

    def train(
        self, X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray
    ) -> History:
        """Fit with Adam, LR halving on plateau, early stopping and best-checkpoint restore.

        Returns:
            Loss and learning rate per epoch, and the epoch whose weights were kept.
        """
        model = self._check_built()
        torch.manual_seed(self.random_state)  # dropout draws from the global generator
        generator = torch.Generator().manual_seed(self.random_state)
        x_train, x_val = self._check_input(X_train), self._check_input(X_val)
        t_train = torch.from_numpy(np.asarray(y_train, dtype=np.float32))
        t_val = torch.from_numpy(np.asarray(y_val, dtype=np.float32))
        positives = float(t_train.sum())
        weight = (len(t_train) - positives) / max(positives, 1.0)
        pos_weight = torch.tensor(weight if self.class_weight == "balanced" else 1.0)
        loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        optimizer = torch.optim.Adam(model.parameters(), lr=self.learning_rate)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=max(1, self.patience // 3)
        )
        history, best_loss, best_state = History(), math.inf, copy.deepcopy(model.state_dict())
        reference = math.inf  # the loss patience counts from
        started, stale = time.perf_counter(), 0
        steps = math.ceil(len(x_train) / self.batch_size)
        # A bar on a terminal; elsewhere one log line per epoch (below) says more.
        bar = self.verbose and on_terminal()
        with progress_bar(self.epochs, "Training LSTM", enabled=bar) as advance:
            for epoch in range(1, self.epochs + 1):
                model.train()
                order, total = torch.randperm(len(x_train), generator=generator), 0.0
                for step in range(steps):
                    batch = order[step * self.batch_size : (step + 1) * self.batch_size]
                    if len(batch) < 2:  # batch norm needs two samples in training mode
                        continue
                    optimizer.zero_grad()
                    loss = loss_fn(model(x_train[batch]), t_train[batch])
                    loss.backward()
                    optimizer.step()
                    total += float(loss.detach()) * len(batch)
                val_loss, val_f1 = self._loss(x_val, t_val, loss_fn)
                scheduler.step(val_loss)
                history.train_loss.append(total / len(x_train))
                history.val_loss.append(val_loss)
                history.learning_rate.append(optimizer.param_groups[0]["lr"])
                advance()
                if self.verbose and not bar:
                    elapsed = time.perf_counter() - started
                    log.info(
                        "epoch=%d/%d loss=%.6g val_loss=%.6g val_f1=%.4f lr=%g elapsed_s=%.1f "
                        "eta_s=%.0f (at most: early stopping usually ends sooner)",
                        epoch,
                        self.epochs,
                        history.train_loss[-1],
                        val_loss,
                        val_f1,
                        history.learning_rate[-1],
                        elapsed,
                        elapsed / epoch * (self.epochs - epoch),
                    )
                if val_loss < best_loss:  # the weights kept are always those of the lowest loss
                    best_loss, best_state = val_loss, copy.deepcopy(model.state_dict())
                    history.best_epoch = epoch
                # Patience counts epochs without a real improvement: an absolute margin (1e-6)
                # was 10 % of a loss of 1e-5 and nothing at 0.1, so it meant different things.
                if val_loss < reference * (1.0 - MIN_RELATIVE_IMPROVEMENT):
                    reference, stale = val_loss, 0
                else:
                    stale += 1
                    if stale >= self.patience:
                        history.stopped_early = True
                        break
        model.load_state_dict(best_state)
        history.seconds = time.perf_counter() - started
        self.history_ = history
        return history

    @torch.no_grad()
    def _loss(self, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module) -> tuple[float, float]:
        """Mean loss on ``x`` and the F1 of its logits at 0 (probability 0.5)."""
        self.model_.eval()
        total, hits, predicted = 0.0, 0.0, 0.0
        for begin in range(0, len(x), 8192):
            logits, target = self.model_(x[begin : begin + 8192]), y[begin : begin + 8192]
            total += float(loss_fn(logits, target)) * len(target)
            positive = (logits >= 0).float()
            hits += float((positive * target).sum())
            predicted += float(positive.sum())
        actual = float(y.sum())
        f1 = 2.0 * hits / (predicted + actual) if predicted + actual else 0.0
        return total / max(len(x), 1), f1

    @torch.no_grad()
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probability of reentry for every window, shape ``(n,)``."""
        model = self._check_built()
        model.eval()
        x = self._check_input(X)
        parts = [torch.sigmoid(model(x[b : b + 8192])) for b in range(0, len(x), 8192)]
        return torch.cat(parts).numpy() if parts else np.empty(0, dtype=np.float32)

    def predict(self, X: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """0/1 decisions at ``threshold``."""
        return (self.predict_proba(X) >= threshold).astype(np.int64)

    def evaluate(self, X: np.ndarray, y: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
        """Row metrics (accuracy, precision, recall, F1, ROC-AUC, PR-AUC, confusion matrix)."""
        return classification_metrics(np.asarray(y), self.predict_proba(X), threshold)

    def save(self, path: str | Path) -> Path:
        """Save weights and constructor arguments to a torch checkpoint (training side only)."""
        model = self._check_built()
        target = Path(path)
        torch.save({"params": self.get_params(), "state_dict": model.state_dict()}, target)
        return target

    @classmethod
    def load(cls, path: str | Path) -> LSTMClassifier:
        """Load a checkpoint written by :meth:`save` (weights only: no pickled code runs)."""
        checkpoint = torch.load(Path(path), map_location="cpu", weights_only=True)
        classifier = cls(**checkpoint["params"]).build_model()
        classifier.model_.load_state_dict(checkpoint["state_dict"])
        classifier.model_.eval()
        return classifier

    def history_dict(self) -> dict[str, Any]:
        """Training history as plain data (for metadata.json)."""
        return asdict(self.history_)


def export_onnx(
    classifier: LSTMClassifier, path: str | Path, sample: np.ndarray, atol: float = 1e-4
) -> float:
    """Export the network (sigmoid included) to ONNX and check it against torch.

    Args:
        classifier: A trained classifier.
        path: Where to write the ``.onnx`` file.
        sample: Windows to compare torch and ONNX Runtime on (a few thousand is plenty).
        atol: Largest absolute probability difference accepted.

    Returns:
        The largest absolute difference seen.

    Raises:
        RuntimeError: If ONNX Runtime's probabilities differ from torch's by more than ``atol``.
    """
    import onnxruntime as ort

    model = ProbabilityNet(classifier._check_built()).eval()
    target = Path(path)
    example = torch.from_numpy(np.ascontiguousarray(sample[:2], dtype=np.float32))
    batch = torch.export.Dim("batch", min=1)
    # torch.export warns about LSTM internals it handles itself; those are not ours to fix.
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        onnx_log.setLevel(logging.ERROR)
        torch.onnx.export(
            model,
            (example,),
            str(target),
            input_names=["windows"],
            output_names=["probability"],
            dynamic_shapes={"x": {0: batch}},
            dynamo=True,
            verbose=False,
            external_data=False,
        )
        onnx_log.setLevel(level)
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    windows = np.ascontiguousarray(sample, dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(windows)).numpy()
    actual = session.run(None, {"windows": windows})[0]
    difference = float(np.max(np.abs(actual - expected))) if len(windows) else 0.0
    if not difference <= atol:
        raise RuntimeError(f"ONNX export differs from torch by {difference:.2e} (> {atol:.0e})")
    return difference
