"""Schema validation: every kind of bad file is rejected with file, column, line and count."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from missile_classifier.columns import COLUMNS, FEATURE_COLUMNS, LABEL
from missile_classifier.schema import SchemaError, load_tracks, read_tracks, validate_frame
from missile_classifier.scoring.plausibility import ID_LIMITS, LIMITS


def _write(tmp_path: Path, frame: pd.DataFrame, name: str = "bad.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_good_file_loads_in_canonical_form(good_csv: Path, challenge_frame: pd.DataFrame) -> None:
    df, report = read_tracks(good_csv, require_labels=True)
    assert list(df.columns) == list(COLUMNS)
    assert report.rows == len(challenge_frame) and report.streams == 4 and report.labeled
    assert report.warnings == []
    assert df["track_id"].dtype == np.int64 and df[LABEL].dtype == np.int64
    np.testing.assert_allclose(df["altitude"], challenge_frame["altitude"], atol=1e-4)


def test_unlabeled_file_is_accepted_for_prediction(
    tmp_path: Path, challenge_frame: pd.DataFrame
) -> None:
    path = _write(tmp_path, challenge_frame[list(FEATURE_COLUMNS)])
    df, report = read_tracks(path)
    assert not report.labeled and LABEL not in df.columns
    with pytest.raises(SchemaError, match=r"bad\.csv: column 'reentry_phase': missing column"):
        load_tracks(path, require_labels=True)


def test_missing_column_names_file_and_column(
    tmp_path: Path, challenge_frame: pd.DataFrame
) -> None:
    path = _write(tmp_path, challenge_frame.drop(columns=["altitude"]))
    with pytest.raises(SchemaError) as info:
        load_tracks(path)
    assert info.value.column == "altitude" and str(path) in str(info.value)


@pytest.mark.parametrize(
    ("column", "bad", "problem"),
    [
        ("altitude", "high", "is not a number"),
        ("latitude", np.nan, "has missing values"),
        ("longitude", np.inf, "has infinite values"),
        ("altitude", -np.inf, "has infinite values"),
        ("radiometric_intensity", np.inf, "has infinite values"),
        ("latitude", 90.5, r"is outside \[-90, 90\]"),
        ("longitude", -180.01, r"is outside \[-180, 180\]"),
        ("track_id", 1.5, "is not an integer"),
        ("reentry_phase", 2, "is not 0 or 1"),
        ("timestamp", "", "has missing values"),
    ],
)
def test_bad_values_report_column_first_line_and_count(
    tmp_path: Path, challenge_frame: pd.DataFrame, column: str, bad: float | str, problem: str
) -> None:
    frame = challenge_frame.astype({column: object})
    rows = [7, 30, 31]  # data rows; file lines are row + 2 (1-based, header on line 1)
    frame.loc[rows, column] = bad
    path = _write(tmp_path, frame)
    with pytest.raises(SchemaError, match=problem) as info:
        load_tracks(path)
    error = info.value
    assert (error.source, error.column, error.line, error.count) == (str(path), column, 9, 3)
    assert f"column {column!r}" in str(error) and "first at line 9" in str(error)


def test_missing_intensity_is_allowed(tmp_path: Path, challenge_frame: pd.DataFrame) -> None:
    frame = challenge_frame.copy()
    frame.loc[[3, 4], "radiometric_intensity"] = np.nan
    df = load_tracks(_write(tmp_path, frame))
    assert df["radiometric_intensity"].isna().sum() == 2


def test_duplicate_rows_are_rejected(tmp_path: Path, challenge_frame: pd.DataFrame) -> None:
    frame = pd.concat([challenge_frame, challenge_frame.iloc[[5, 6]]], ignore_index=True)
    with pytest.raises(SchemaError, match="repeats a") as info:
        load_tracks(_write(tmp_path, frame))
    assert info.value.count == 2 and info.value.line == len(challenge_frame) + 2


def test_a_repeated_key_is_rejected_even_when_the_other_values_differ(
    tmp_path: Path, challenge_frame: pd.DataFrame
) -> None:
    # Two observations of one stream at one time that disagree: the duplicate is the key
    # (track_id, sensor_id, timestamp), not the whole row.
    again = challenge_frame.iloc[[5, 6]].assign(
        latitude=lambda f: f["latitude"] + 0.5,
        altitude=lambda f: f["altitude"] + 100.0,
        radiometric_intensity=np.nan,
        reentry_phase=lambda f: 1 - f["reentry_phase"],
    )
    frame = pd.concat([challenge_frame, again], ignore_index=True)
    path = _write(tmp_path, frame)
    line = len(challenge_frame) + 2
    timestamp = float(challenge_frame["timestamp"].iloc[5])
    with pytest.raises(SchemaError) as info:
        load_tracks(path, require_labels=True)
    assert str(info.value) == (
        f"{path}: column 'timestamp': repeats a (track_id, sensor_id, timestamp) already seen "
        f"(2 rows; first at line {line}, value {timestamp!r})"
    )


def test_same_timestamp_on_another_sensor_is_fine(challenge_frame: pd.DataFrame) -> None:
    other = challenge_frame.assign(sensor_id=4)
    df, report = validate_frame(pd.concat([challenge_frame, other]))
    assert report.streams == 8 and len(df) == 2 * len(challenge_frame)


def test_unsorted_rows_are_sorted_with_a_warning(
    tmp_path: Path, challenge_frame: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    shuffled = challenge_frame.sample(frac=1.0, random_state=3)
    with caplog.at_level(logging.WARNING):
        df, report = read_tracks(_write(tmp_path, shuffled))
    moved = int((shuffled.index.to_numpy() != np.arange(len(shuffled))).sum())
    assert report.warnings == [
        f"{tmp_path / 'bad.csv'}: {moved} rows were not in (track_id, sensor_id, timestamp) "
        "order; sorted"
    ]
    assert report.warnings[0] in caplog.text
    # The simulator writes canonical order (and CSV keeps every float exactly): the expected
    # frame comes from there, not from the validation under test.
    pd.testing.assert_frame_equal(df, challenge_frame.reset_index(drop=True))


def test_extra_columns_are_kept(challenge_frame: pd.DataFrame) -> None:
    df, _ = validate_frame(challenge_frame.assign(note="x"))
    assert df["note"].eq("x").all()


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "file not found"), ("", "cannot be parsed"), ("a,b\n1,2\n", "missing column")],
)
def test_unreadable_files(tmp_path: Path, content: str | None, problem: str) -> None:
    path = tmp_path / "x.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SchemaError, match=problem):
        load_tracks(path)


_bad_values = st.sampled_from([np.nan, np.inf, -np.inf, 1e9, -1e9])


@settings(max_examples=60, deadline=None)
@given(
    row=st.integers(0, 199),
    column=st.sampled_from(["latitude", "longitude", "altitude", "timestamp"]),
    value=_bad_values,
)
def test_one_bad_value_anywhere_is_found(row: int, column: str, value: float) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "timestamp": np.arange(200) * 0.5,
            "track_id": np.repeat([1, 2], 100),
            "sensor_id": 3,
            "latitude": rng.uniform(-90, 90, 200),
            "longitude": rng.uniform(-180, 180, 200),
            "altitude": rng.uniform(0, 1e5, 200),
            "radiometric_intensity": rng.normal(size=200),
        }
    )
    frame.loc[row, column] = value
    low, high = LIMITS[column]
    if low <= value <= high:  # 1e9 s is 2001: a legal time
        validate_frame(frame)
        return
    with pytest.raises(SchemaError) as info:
        validate_frame(frame)
    assert (info.value.column, info.value.line, info.value.count) == (column, row + 2, 1)


@settings(max_examples=40, deadline=None)
@given(
    latitude=st.lists(st.floats(-90, 90), min_size=1, max_size=30),
    other=st.floats(-1_000, 1_000),
)
def test_valid_frames_pass_unchanged(latitude: list[float], other: float) -> None:
    n = len(latitude)
    frame = pd.DataFrame(
        {
            "timestamp": np.arange(n, dtype=float),
            "track_id": 0,
            "sensor_id": 1,
            "latitude": latitude,
            "longitude": 0.0,
            "altitude": other,
            "radiometric_intensity": other,
        }
    )
    df, report = validate_frame(frame)
    assert report.warnings == [] and len(df) == n
    np.testing.assert_array_equal(df["latitude"], frame["latitude"])


def test_error_messages_give_the_count_the_first_line_and_its_value(
    tmp_path: Path, challenge_frame: pd.DataFrame
) -> None:
    frame = challenge_frame.copy()
    frame.loc[[15, 20, 21], "latitude"] = 95.2
    path = _write(tmp_path, frame)
    with pytest.raises(SchemaError) as info:
        load_tracks(path)
    assert str(info.value) == (
        f"{path}: column 'latitude': is outside [-90, 90] (3 rows; first at line 17, value 95.2)"
    )
    assert info.value.value == 95.2 and type(info.value.value) is float  # not a NumPy scalar


@pytest.mark.parametrize(
    ("column", "bad", "detail"),
    [
        ("track_id", 1.5, "is not an integer (1 row; first at line 2, value 1.5)"),
        ("altitude", "high", "is not a number (1 row; first at line 2, value 'high')"),
        ("longitude", "", "has missing values (1 row; first at line 2, value nan)"),
        (
            "radiometric_intensity",
            np.inf,
            "has infinite values (1 row; first at line 2, value inf)",
        ),
        ("reentry_phase", 2, "is not 0 or 1 (1 row; first at line 2, value 2.0)"),
    ],
)
def test_one_bad_row_is_reported_in_the_singular(
    tmp_path: Path, challenge_frame: pd.DataFrame, column: str, bad: float | str, detail: str
) -> None:
    frame = challenge_frame.astype({column: object})
    frame.loc[0, column] = bad
    path = _write(tmp_path, frame)
    with pytest.raises(SchemaError) as info:
        load_tracks(path)
    assert str(info.value) == f"{path}: column {column!r}: {detail}"


def test_messages_without_rows_have_no_detail(
    tmp_path: Path, challenge_frame: pd.DataFrame
) -> None:
    path = _write(tmp_path, challenge_frame.drop(columns=["altitude", "latitude"]))
    with pytest.raises(SchemaError) as info:
        load_tracks(path)
    assert str(info.value) == f"{path}: column 'latitude': missing column(s) latitude, altitude"
    with pytest.raises(SchemaError) as info:
        load_tracks(tmp_path / "absent.csv")
    assert str(info.value) == f"{tmp_path / 'absent.csv'}: file not found"


@pytest.mark.parametrize("column", ["sensor_id", "latitude", "reentry_phase"])
def test_boolean_columns_are_rejected_with_their_type(
    tmp_path: Path, challenge_frame: pd.DataFrame, column: str
) -> None:
    # True/False would quietly become 1/0: a sensor id, a latitude or a label it never was.
    frame = challenge_frame.assign(**{column: challenge_frame[column] > 0})
    path = _write(tmp_path, frame)  # pandas reads True/False back as a bool column
    with pytest.raises(SchemaError) as info:
        load_tracks(path)
    assert str(info.value) == f"{path}: column {column!r}: has type bool, expected numbers"
    with pytest.raises(SchemaError, match="has type bool, expected numbers"):
        validate_frame(frame)


@pytest.mark.parametrize(
    ("column", "limit"),
    [("latitude", 90.0), ("latitude", -90.0), ("longitude", 180.0), ("longitude", -180.0)],
)
def test_coordinate_limits_are_inclusive(
    challenge_frame: pd.DataFrame, column: str, limit: float
) -> None:
    frame = challenge_frame.copy()
    frame.loc[[3, 4], column] = limit  # the poles and the antimeridian are real places
    df, _ = validate_frame(frame)
    assert (df.loc[[3, 4], column] == limit).all()
    beyond = np.nextafter(limit, np.inf if limit > 0 else -np.inf)  # the next float out
    frame.loc[4, column] = beyond
    with pytest.raises(SchemaError, match=r"is outside \[") as info:
        validate_frame(frame)
    assert (info.value.column, info.value.line, info.value.count) == (column, 6, 1)
    assert info.value.value == beyond


def _one_row(**values: object) -> pd.DataFrame:
    row: dict[str, object] = {
        "timestamp": 1.7e9,
        "track_id": 1,
        "sensor_id": 0,
        "latitude": 10.0,
        "longitude": 20.0,
        "altitude": 5_000.0,
        "radiometric_intensity": 0.4,
    }
    return pd.DataFrame([{**row, **values}])


@pytest.mark.parametrize(
    ("column", "inside", "outside", "limits"),
    [
        ("altitude", 10_000_000.0, 10_000_000.5, "[-5,000, 10,000,000]"),
        ("altitude", -5_000.0, -5_000.5, "[-5,000, 10,000,000]"),
        ("timestamp", 4_102_444_800.0, 4_102_444_800.5, "[0, 4,102,444,800]"),
        ("timestamp", 0.0, -0.5, "[0, 4,102,444,800]"),
        ("radiometric_intensity", -1_000.0, -1_000.5, "[-1,000, 1,000]"),
        ("radiometric_intensity", 1_000.0, 1e308, "[-1,000, 1,000]"),
    ],
)
def test_values_beyond_the_physical_limits_are_refused(
    column: str, inside: float, outside: float, limits: str
) -> None:
    # The limits are inclusive: an altitude of exactly 10,000 km is a (very high) measurement.
    validate_frame(_one_row(**{column: inside}))
    with pytest.raises(SchemaError) as info:
        validate_frame(_one_row(**{column: outside}), "x.csv")
    assert str(info.value) == (
        f"x.csv: column {column!r}: is outside {limits} (1 row; first at line 2, value {outside!r})"
    )


def test_ids_keep_every_int64_value_exactly(tmp_path: Path) -> None:
    # Beyond 2**53 a float64 cannot hold every integer: two tracks would merge into one.
    smallest, biggest = ID_LIMITS
    frame = pd.concat(
        [_one_row(track_id=biggest), _one_row(track_id=biggest - 1, sensor_id=smallest)]
    )
    path = _write(tmp_path, frame)
    df = load_tracks(path)
    assert df["track_id"].tolist() == [2**63 - 2, 2**63 - 1]  # sorted by track
    assert df["sensor_id"].tolist() == [-(2**63), 0] and df["track_id"].dtype == np.int64


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("9223372036854775808", "is beyond the int64 range"),
        (
            "18446744073709551616",
            "is outside [-9,223,372,036,854,775,808, 9,223,372,036,854,775,807]",
        ),
        (
            "-18446744073709551616",
            "is outside [-9,223,372,036,854,775,808, 9,223,372,036,854,775,807]",
        ),
    ],
)
def test_ids_beyond_int64_are_refused(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "x.csv"
    path.write_text(f"{','.join(FEATURE_COLUMNS)}\n1.7e9,{text},0,10,20,5000,0.4\n")
    with pytest.raises(SchemaError, match=re.escape(f"column 'track_id': {problem} (1 row")):
        load_tracks(path)


def test_an_id_just_below_int64_is_refused_not_rounded_into_range(tmp_path: Path) -> None:
    # pandas holds -2**63 - 1 as an exact Python int (with the column's other ids, a missing
    # one as NaN); as a float it would be -2**63, an id int64 holds, and the track would
    # silently merge with track -2**63.
    path = tmp_path / "x.csv"
    rows = ["-9223372036854775808", "9223372036854775807", "", "-9223372036854775809"]
    path.write_text(
        f"{','.join(FEATURE_COLUMNS)}\n"
        + "".join(f"1.7e9,{track},0,10,20,5000,0.4\n" for track in rows)
    )
    with pytest.raises(SchemaError) as info:
        load_tracks(path)
    assert str(info.value) == (
        f"{path}: column 'track_id': is outside [-9,223,372,036,854,775,808, "
        "9,223,372,036,854,775,807] (1 row; first at line 5, value -9223372036854775809)"
    )
    assert info.value.value == -(2**63) - 1  # exact, not a rounded float
    with pytest.raises(SchemaError) as info:  # a frame built in code holds it so too
        validate_frame(_one_row(sensor_id=-(2**63) - 1))
    assert (info.value.column, info.value.line, info.value.value) == ("sensor_id", 2, -(2**63) - 1)
    # Only ids have the int64 range: another column of huge ints meets its own limits.
    with pytest.raises(SchemaError) as info:
        validate_frame(_one_row(altitude=2**70), "x.csv")
    assert str(info.value) == (
        "x.csv: column 'altitude': is outside [-5,000, 10,000,000] "
        "(1 row; first at line 2, value 1.1805916207174113e+21)"
    )


def test_messages_name_the_data_when_no_file_is_given() -> None:
    with pytest.raises(SchemaError) as info:
        validate_frame(_one_row(latitude=95.0))
    assert str(info.value) == (
        "<data>: column 'latitude': is outside [-90, 90] (1 row; first at line 2, value 95.0)"
    )
    assert validate_frame(_one_row())[1].source == "<data>"
    assert validate_frame(_one_row(), "tracks.csv")[1].source == "tracks.csv"


def test_an_empty_frame_has_no_streams() -> None:
    df, report = validate_frame(pd.DataFrame({c: [] for c in FEATURE_COLUMNS}), "empty.csv")
    assert (report.rows, report.streams, report.labeled, report.warnings) == (0, 0, False, [])
    assert len(df) == 0


@pytest.mark.parametrize("column", ["timestamp", "latitude", "altitude"])
def test_an_infinite_coordinate_is_named_exactly(column: str) -> None:
    with pytest.raises(SchemaError) as info:
        validate_frame(_one_row(**{column: -np.inf}), "x.csv")
    assert str(info.value) == (
        f"x.csv: column {column!r}: has infinite values (1 row; first at line 2, value -inf)"
    )


def test_an_id_of_2_to_the_63_is_beyond_int64(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(f"{','.join(FEATURE_COLUMNS)}\n1.7e9,1,9223372036854775808,10,20,5000,0.4\n")
    with pytest.raises(SchemaError) as info:
        load_tracks(path)
    assert str(info.value) == (
        f"{path}: column 'sensor_id': is beyond the int64 range "
        "(1 row; first at line 2, value 9.223372036854776e+18)"
    )


def test_ids_written_as_floats_become_those_integers(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    # Up to 2**53 a float holds every integer (beyond, see the next test).
    lines = ["1.7e9,1000.0,126.0,10,20,5000,0.4", "1.7e9,9007199254740992.0,-5e3,10,20,5000,0.4"]
    path.write_text(f"{','.join(FEATURE_COLUMNS)}\n" + "\n".join(lines) + "\n")
    df, report = read_tracks(path)
    assert df["track_id"].tolist() == [1000, 2**53] and df["sensor_id"].tolist() == [126, -5000]
    assert df["track_id"].dtype == np.int64 and df["sensor_id"].dtype == np.int64
    assert report.warnings == []
    # Every other schema column is float64, however it was written (here as integers).
    ints = validate_frame(_one_row(altitude=5_000, latitude=10, timestamp=1_700_000_000))[0]
    assert {c: str(ints[c].dtype) for c in ("altitude", "latitude", "timestamp")} == {
        "altitude": "float64",
        "latitude": "float64",
        "timestamp": "float64",
    }


def test_a_missing_label_is_named(tmp_path: Path, challenge_frame: pd.DataFrame) -> None:
    frame = challenge_frame.astype({LABEL: object})
    frame.loc[[4, 9], LABEL] = ""
    path = _write(tmp_path, frame)
    with pytest.raises(SchemaError) as info:
        load_tracks(path)  # a label column is checked even when labels are not required
    assert str(info.value) == (
        f"{path}: column 'reentry_phase': has missing values (2 rows; first at line 6, value nan)"
    )


def test_a_file_that_is_not_csv_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text('a,b\n1,2\n"unclosed\n')
    with pytest.raises(SchemaError) as info:
        load_tracks(path)
    assert str(info.value) == (
        f"{path}: cannot be parsed as CSV: Error tokenizing data. C error: EOF inside string "
        "starting at row 2"
    )
    assert (info.value.source, info.value.column, info.value.line) == (str(path), None, None)


def test_a_big_file_is_judged_column_by_column_not_chunk_by_chunk(tmp_path: Path) -> None:
    # pandas' low-memory reader types each chunk of ~131,000 rows on its own: a sensor_id that
    # turns to True/False deep in the file would come back as a few strings and many booleans,
    # and the booleans would quietly read as 1/0. Read whole, every True is text, and refused.
    n = 140_000
    rows = (f"{i}.5,1,{0 if i < n // 2 else True},10,20,5000,0.4\n" for i in range(n))
    path = tmp_path / "big.csv"
    path.write_text(f"{','.join(FEATURE_COLUMNS)}\n" + "".join(rows))
    with pytest.raises(SchemaError) as info:
        load_tracks(path)
    assert str(info.value) == (
        f"{path}: column 'sensor_id': is not a number "
        f"({n // 2} rows; first at line {n // 2 + 2}, value 'True')"
    )


def test_a_big_id_in_a_column_of_ids_written_as_decimals_is_refused_not_rounded(
    tmp_path: Path,
) -> None:
    # One id written "3.0" makes the reader take the whole column as floats, which cannot hold
    # 4611686018427387905 (it would become ...904: another track).
    path = tmp_path / "x.csv"
    path.write_text(
        f"{','.join(FEATURE_COLUMNS)}\n"
        "1.7e9,3.0,0,10,20,5000,0.4\n"
        "1.7e9,4611686018427387905,0,10,20,5000,0.4\n"
    )
    with pytest.raises(SchemaError) as info:
        load_tracks(path)
    assert (info.value.column, info.value.line, info.value.count) == ("track_id", 3, 1)
    assert str(info.value) == (
        f"{path}: column 'track_id': is beyond 2**53 in a column of ids written as decimals, "
        "where it may have been rounded; write the ids as integers (no '.0') (1 row; first at "
        "line 3, value 4.611686018427388e+18)"
    )
    # The first integer a float64 skips neighbours is 2**53 + 1: 2**53 + 2 is already refused.
    path.write_text(
        f"{','.join(FEATURE_COLUMNS)}\n"
        "1.7e9,3.0,0,10,20,5000,0.4\n"
        "1.7e9,9007199254740994,0,10,20,5000,0.4\n"
    )
    with pytest.raises(SchemaError, match="is beyond 2"):
        load_tracks(path)
    # Written as integers, the same id is kept exactly.
    path.write_text(
        f"{','.join(FEATURE_COLUMNS)}\n"
        "1.7e9,3,0,10,20,5000,0.4\n"
        "1.7e9,4611686018427387905,0,10,20,5000,0.4\n"
    )
    assert load_tracks(path)["track_id"].tolist() == [3, 4611686018427387905]
