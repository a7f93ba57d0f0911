"""Metrics: row metrics, onset error and flicker per stream, the threshold choice."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from missile_classifier.training.metrics import (
    choose_threshold,
    classification_metrics,
    evaluate_predictions,
    f1_at_cuts,
    flicker_counts,
    stream_onsets,
    track_metrics,
)

STEP = 0.5


def stream(
    track: int, sensor: int, truth: list[int], predicted: list[int], start: float = 1000.0
) -> dict[str, np.ndarray]:
    """Rows of one stream sampled every 0.5 s."""
    n = len(truth)
    return {
        "track_id": np.full(n, track),
        "sensor_id": np.full(n, sensor),
        "timestamp": start + STEP * np.arange(n),
        "y_true": np.asarray(truth),
        "y_pred": np.asarray(predicted),
    }


def concat(*streams: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([s[key] for s in streams]) for key in streams[0]}


def shuffled(rows: dict[str, np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
    order = np.random.default_rng(seed).permutation(len(rows["track_id"]))
    return {key: value[order] for key, value in rows.items()}


# Four streams with known answers (onset of the truth at row 4 = 2.0 s after the start):
LATE = stream(1, 3, [0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1, 1, 1])  # +0.5 s
EARLY = stream(1, 4, [0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1, 1, 1], start=1000.25)  # -1.0 s
MISSED = stream(2, 3, [0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0, 0])
FALSE = stream(3, 3, [0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 1])  # lost before reentry; flickers
ROWS = concat(LATE, EARLY, MISSED, FALSE)


def metrics_of(rows: dict[str, np.ndarray]) -> dict[str, Any]:
    return track_metrics(
        rows["track_id"], rows["sensor_id"], rows["timestamp"], rows["y_true"], rows["y_pred"]
    )


def test_onset_errors_are_signed_seconds_per_stream() -> None:
    result = metrics_of(ROWS)
    per_stream = result["per_stream"]
    assert isinstance(per_stream, list)
    assert [(s["track_id"], s["sensor_id"]) for s in per_stream] == [(1, 3), (1, 4), (2, 3), (3, 3)]
    assert [s["error_s"] for s in per_stream] == [0.5, -1.0, None, None]
    assert per_stream[0]["true_onset"] == 1002.0
    assert per_stream[0]["predicted_onset"] == 1002.5
    assert per_stream[2]["predicted_onset"] is None
    assert per_stream[3]["true_onset"] is None
    assert [s["flicker"] for s in per_stream] == [0, 0, 0, 2]
    assert [s["rows"] for s in per_stream] == [8, 8, 8, 6]


def test_stream_summary_counts_missed_and_false_onsets_apart() -> None:
    result = metrics_of(ROWS)
    assert result["streams"] == 4
    assert result["streams_with_onset"] == 3
    assert result["missed_onsets"] == 1
    assert result["false_onsets"] == 1
    # Only the two streams with both onsets enter the error statistics: +0.5 and -1.0.
    assert result["onset_error_s"] == {
        "median_abs": 0.75,
        "p95_abs": pytest.approx(0.975),
        "max_abs": 1.0,
        "mean_signed": -0.25,
    }
    # Of three true onsets, one is within 0.5 s (exactly 0.5 counts); the missed one is not.
    assert result["within_tolerance"] == pytest.approx(1 / 3)
    assert result["clean_streams"] == 0.25
    assert result["flicker"] == {"total": 2, "streams_with_flicker": 1}


def test_tolerance_is_a_parameter() -> None:
    rows = ROWS
    wide = track_metrics(
        rows["track_id"],
        rows["sensor_id"],
        rows["timestamp"],
        rows["y_true"],
        rows["y_pred"],
        tolerance_s=1.0,
    )
    assert wide["within_tolerance"] == pytest.approx(2 / 3)
    assert wide["tolerance_s"] == 1.0


def test_rows_in_any_order_give_the_same_answer() -> None:
    expected = metrics_of(ROWS)
    for seed in range(3):
        assert metrics_of(shuffled(ROWS, seed)) == expected


def test_perfect_predictions_are_clean() -> None:
    rows = concat(LATE, MISSED)
    rows["y_pred"] = rows["y_true"].copy()
    result = metrics_of(rows)
    assert result["onset_error_s"]["max_abs"] == 0.0
    assert result["within_tolerance"] == 1.0
    assert result["clean_streams"] == 1.0
    assert result["missed_onsets"] == result["false_onsets"] == 0


def test_no_rows_gives_empty_statistics() -> None:
    empty = np.zeros(0)
    result = track_metrics(empty, empty, empty, empty, empty)
    assert result["streams"] == 0
    assert result["onset_error_s"]["median_abs"] is None
    assert result["within_tolerance"] is None
    assert result["per_stream"] == []


def test_mismatched_lengths_are_rejected() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        track_metrics(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(2))


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ([0, 0, 1, 1], 0),  # one clean onset
        ([0, 1, 0, 1], 2),  # back and forth once more
        ([1, 1, 1], 0),  # already in reentry when the stream starts
        ([1, 0, 1], 2),
        ([0, 1, 0], 1),
        ([0, 0, 0], 0),
        ([1], 0),
    ],
)
def test_flicker_counts(labels: list[int], expected: int) -> None:
    bounds = np.array([0, len(labels)])
    assert flicker_counts(np.array(labels), bounds).tolist() == [expected]
    assert flicker_counts(np.array(labels, dtype=bool), bounds).tolist() == [expected]


def test_flicker_counts_per_stream_and_empty_streams() -> None:
    labels = np.array([0, 1, 0, 1, 1, 0])
    assert flicker_counts(labels, np.array([0, 4, 4, 6])).tolist() == [2, 0, 1]


def test_stream_onsets() -> None:
    time = np.arange(6, dtype=np.float64)
    labels = np.array([0, 1, 1, 0, 0, 0])
    onsets = stream_onsets(time, labels, np.array([0, 3, 6]))
    assert onsets[0] == 1.0
    assert np.isnan(onsets[1])


def test_classification_metrics_on_a_small_case() -> None:
    y = np.array([0, 0, 1, 1])
    proba = np.array([0.1, 0.6, 0.4, 0.9])
    m = classification_metrics(y, proba, 0.5)
    assert m["confusion_matrix"] == [[1, 1], [1, 1]]
    assert m["f1"] == 0.5
    assert m["roc_auc"] == 0.75
    assert classification_metrics(np.zeros(3), np.zeros(3))["roc_auc"] is None


def test_choose_threshold_on_a_separable_case() -> None:
    y = np.array([0, 0, 0, 1, 1])
    assert choose_threshold(y, np.array([0.1, 0.2, 0.3, 0.8, 0.9])) == 0.5
    # 0.5 cannot separate these: the middle of the gap can.
    assert choose_threshold(y, np.array([0.5, 0.55, 0.6, 0.8, 0.9])) == pytest.approx(0.7)
    assert choose_threshold(y, np.array([0.01, 0.02, 0.03, 0.1, 0.2])) == pytest.approx(0.065)


def test_choose_threshold_without_positives_keeps_one_half() -> None:
    assert choose_threshold(np.zeros(4), np.array([0.1, 0.2, 0.7, 0.9])) == 0.5
    assert choose_threshold(np.zeros(0), np.zeros(0)) == 0.5


def test_f1_at_cuts_rejects_nan() -> None:
    with pytest.raises(ValueError, match="finite"):
        f1_at_cuts(np.array([0, 1]), np.array([0.1, np.nan]))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0])),
        min_size=1,
        max_size=30,
    )
)
def test_f1_at_cuts_and_choose_threshold_match_brute_force(pairs: list[tuple[int, float]]) -> None:
    y = np.array([p[0] for p in pairs])
    proba = np.array([p[1] for p in pairs])
    cuts, f1 = f1_at_cuts(y, proba)
    brute = [f1_score(y, proba >= c, zero_division=0) for c in cuts]
    np.testing.assert_allclose(f1, brute)
    if y.any():
        chosen = choose_threshold(y, proba)
        assert f1_score(y, proba >= chosen, zero_division=0) == pytest.approx(max(brute))


def test_evaluate_predictions_merges_row_and_stream_metrics() -> None:
    # Expected values worked out by hand from the four streams above, not by the functions
    # evaluate_predictions is built from. A probability equal to the threshold is reentry.
    rows = ROWS
    proba = np.where(rows["y_pred"] == 1, 0.8, 0.2)
    result = evaluate_predictions(
        rows["track_id"], rows["sensor_id"], rows["timestamp"], rows["y_true"], proba, 0.8
    )
    # Rows: LATE tn 4 fn 1 tp 3, EARLY tn 2 fp 2 tp 4, MISSED tn 4 fn 4, FALSE tn 4 fp 2.
    assert result["confusion_matrix"] == [[14, 4], [5, 7]]
    assert (result["rows"], result["threshold"]) == (30, 0.8)
    assert result["accuracy"] == pytest.approx(21 / 30)
    assert result["precision"] == pytest.approx(7 / 11)
    assert result["recall"] == pytest.approx(7 / 12)
    assert result["f1"] == pytest.approx(14 / 23)
    # 12 positives (7 at 0.8, 5 at 0.2), 18 negatives (4 at 0.8, 14 at 0.2): of 216 pairs 98 are
    # ordered right and 98 tied (half each). Average precision: 7/12 · 7/11 + 5/12 · 12/30.
    assert result["roc_auc"] == pytest.approx(147 / 216)
    assert result["pr_auc"] == pytest.approx(71 / 132)
    tracks = result["tracks"]
    assert [s["error_s"] for s in tracks["per_stream"]] == [0.5, -1.0, None, None]
    assert [s["flicker"] for s in tracks["per_stream"]] == [0, 0, 0, 2]
    assert (tracks["missed_onsets"], tracks["false_onsets"]) == (1, 1)
    assert tracks["within_tolerance"] == pytest.approx(1 / 3)
    assert set(result) == {
        "rows",
        "threshold",
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "pr_auc",
        "confusion_matrix",
        "tracks",
    }


def test_evaluate_predictions_decides_streams_with_its_threshold_and_tolerance() -> None:
    rows = ROWS
    proba = np.where(rows["y_pred"] == 1, 0.8, 0.2)
    args = (rows["track_id"], rows["sensor_id"], rows["timestamp"], rows["y_true"], proba)
    silent = evaluate_predictions(*args, 0.9)  # nothing reaches 0.9: no row, no onset called
    assert silent["confusion_matrix"] == [[18, 0], [12, 0]]
    assert silent["tracks"]["missed_onsets"] == 3 and silent["tracks"]["false_onsets"] == 0
    assert silent["tracks"]["flicker"] == {"total": 0, "streams_with_flicker": 0}
    wide = evaluate_predictions(*args, 0.5, tolerance_s=1.0)
    assert wide["tracks"]["tolerance_s"] == 1.0
    assert wide["tracks"]["within_tolerance"] == pytest.approx(2 / 3)
