"""`predict` through Arrow's CSV reader and writer writes what pandas writes, byte for byte.

Each case scores the same file twice, once with ``reader="pandas"`` (pandas reads and writes
every cell) and once with the default Arrow reader, and compares the output files' bytes, or
the errors. Files Arrow reads differently (short rows, odd ids, cells needing quotes) must be
handed to pandas; plain files must not be, or the speed is lost.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from missile_classifier import arrow_csv
from missile_classifier.columns import COLUMNS, INTENSITY, SENSOR_ID, TRACK_ID
from missile_classifier.predict import Shard, predict_csv
from missile_classifier.schema import SchemaError
from missile_classifier.scoring.inference import ModelInferenceService
from missile_classifier.simulation.dataset import simulate_dataset


@pytest.fixture(scope="module")
def service(trained_bundle: Path) -> ModelInferenceService:
    return ModelInferenceService(trained_bundle / "models")


@pytest.fixture(scope="module")
def text() -> pd.DataFrame:
    """Three ballistic tracks (several sensors, missing intensities) as text, their streams
    interleaved in time order (so chunks of any size carry streams over), with an extra
    column of notes."""
    frame = simulate_dataset("ballistic", 3, seed=5, test_fraction=0.0).train
    assert frame[INTENSITY].isna().any()
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    frame.insert(2, "note", [f"pass {i % 7}" for i in range(len(frame))])
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return pd.read_csv(io.StringIO(buffer.getvalue()), dtype=str, keep_default_na=False)


def _both(
    service: ModelInferenceService, tmp_path: Path, content: str, **options: object
) -> tuple[bytes, bytes]:
    """The output of ``predict`` on ``content`` read by pandas, then by Arrow."""
    source = tmp_path / "in.csv"
    source.write_text(content)
    outputs = []
    for reader in ("pandas", "arrow"):
        target = tmp_path / f"{reader}.csv"
        predict_csv(service, source, target, reader=reader, **options)  # type: ignore[arg-type]
        outputs.append(target.read_bytes())
    return outputs[0], outputs[1]


def _errors(
    service: ModelInferenceService, tmp_path: Path, content: str, **options: object
) -> tuple[str, str]:
    """The error ``predict`` stops with on ``content`` read by pandas, then by Arrow; neither
    leaves an output file."""
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text(content)
    messages = []
    for reader in ("pandas", "arrow"):
        with pytest.raises(SchemaError) as error:
            predict_csv(service, source, target, reader=reader, **options)  # type: ignore[arg-type]
        messages.append(str(error.value))
        assert not target.exists()
    return messages[0], messages[1]


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


@pytest.mark.parametrize("chunk_rows", [97, 200_000])
def test_a_plain_file_gives_the_same_bytes(
    service: ModelInferenceService, tmp_path: Path, text: pd.DataFrame, chunk_rows: int
) -> None:
    by_pandas, by_arrow = _both(service, tmp_path, _csv(text), chunk_rows=chunk_rows)
    assert by_arrow == by_pandas
    lines = by_arrow.decode().splitlines()
    assert len(lines) == len(text) + 1
    assert lines[0] == ",".join([*text.columns, "reentry_probability", "predicted_reentry_phase"])


def test_a_shard_gives_the_same_bytes(
    service: ModelInferenceService, tmp_path: Path, text: pd.DataFrame
) -> None:
    by_pandas, by_arrow = _both(
        service, tmp_path, _csv(text), chunk_rows=500, shard=Shard.parse("1/3")
    )
    assert by_arrow == by_pandas
    assert 1 < by_arrow.count(b"\n") < len(text)


def test_arrow_reads_a_plain_file_itself(text: pd.DataFrame, tmp_path: Path) -> None:
    """No chunk of a plain file goes to pandas: its cells convert, and write, in Arrow."""
    path = tmp_path / "plain.csv"
    path.write_text(_csv(text))
    names = arrow_csv.header(path)
    assert names == list(text.columns)
    batches = list(arrow_csv.chunks(path, names, 1_000))
    assert [b.num_rows for b in batches[:-1]] == [1_000] * (len(batches) - 1)
    assert sum(b.num_rows for b in batches) == len(text)
    for batch in batches:
        numbers = arrow_csv.numbers(batch, COLUMNS)
        assert numbers is not None
        expected = batch.to_pandas()
        for column in numbers.columns:  # the very floats and ids pandas converts
            converted = pd.to_numeric(expected[column]).to_numpy()
            assert np.array_equal(numbers[column].to_numpy(), converted, equal_nan=True), column
        assert numbers[TRACK_ID].dtype == np.int64 and numbers[SENSOR_ID].dtype == np.int64
        sink = io.BytesIO()
        probability = np.zeros(batch.num_rows)
        decision = np.zeros(batch.num_rows, np.int64)
        assert arrow_csv.write(sink, batch, {"p": probability, "d": decision})


def test_every_probability_is_written_as_pandas_writes_it() -> None:
    probability = np.round(np.arange(1_000_001) / 1e6, 6)
    decision = (probability >= 0.5).astype(np.int64)
    batch = pa.RecordBatch.from_pydict({"n": pa.array(["x"] * len(probability), pa.string())})
    sink = io.BytesIO()
    assert arrow_csv.write(sink, batch, {"p": probability, "d": decision})
    frame = pd.DataFrame({"n": "x", "p": probability, "d": decision})
    assert sink.getvalue().decode() == frame.to_csv(header=False, index=False)
    with pytest.raises(ValueError, match=r"^probabilities must be rounded to 6 decimals$"):
        arrow_csv.write(io.BytesIO(), batch.slice(0, 1), {"p": np.array([1e-7])})


@pytest.mark.parametrize(
    "content",
    [
        "\ufefftimestamp,track_id\n1,2\n",  # a byte-order mark is not part of the first name
        '"time\r\nstamp",track_id\n1,2\n',  # a quoted line break stays as written
        '"time, ""utc""",track_id\n1,2\n',  # quotes and commas inside a quoted name
    ],
)
def test_the_header_is_read_as_pandas_reads_it(tmp_path: Path, content: str) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(content.encode())
    assert arrow_csv.header(path) == list(pd.read_csv(path, dtype=str).columns)


@pytest.mark.parametrize(
    "content",
    [
        b",track_id\n1,2\n",  # pandas names the empty name "Unnamed: 0"
        b"track_id,track_id\n1,2\n",  # ... and the second of two "track_id.1"
        b"\xfftrack_id,a\n1,2\n",  # not UTF-8
        b"",
    ],
)
def test_a_header_pandas_would_rename_or_cannot_read_is_left_to_pandas(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(content)
    assert arrow_csv.header(path) is None


@pytest.mark.parametrize(
    ("rows", "sizes"), [(97, [97, 97, 97, 9]), (100, [100, 100, 100]), (1_000, [300])]
)
def test_chunks_of_many_blocks_hold_the_cells_pandas_reads(
    tmp_path: Path, text: pd.DataFrame, rows: int, sizes: list[int]
) -> None:
    """Arrow reads a file a block of bytes at a time, each block some rows: whatever the
    block size, the chunks hold ``rows`` rows each, and the cells pandas reads."""
    frame = text.iloc[:300].copy()
    frame.loc[frame.index[150], "note"] = "pass 2,\nlate"  # a quoted line break
    path = tmp_path / "in.csv"
    path.write_text(_csv(frame))
    expected = pd.read_csv(path, dtype=str).fillna("<missing>")
    names = arrow_csv.header(path)
    assert names is not None
    for block_bytes in range(700, 1_000, 7):  # a block break in every place a row can have
        batches = list(arrow_csv.chunks(path, names, rows, block_bytes=block_bytes))
        assert [b.num_rows for b in batches] == sizes, block_bytes
        cells = pa.Table.from_batches(batches).to_pandas().fillna("<missing>")
        pd.testing.assert_frame_equal(cells, expected)


def test_a_header_alone_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("timestamp,track_id\n")
    with pytest.raises(arrow_csv.RefusedError):
        list(arrow_csv.chunks(path, ["timestamp", "track_id"], 10))


@pytest.mark.parametrize(
    "change",
    [
        "missing words",  # pandas' missing-value words in the intensity column, written empty
        "comma",  # a note that needs quotes: pandas writes that chunk
        "short row",  # a row with a cell left off: Arrow refuses the file, pandas pads it
        "leading zeros",  # ids written 007: Arrow's cast would take them, pandas does
        "spaces",  # a number with a space, which pandas converts and Arrow refuses
        "repeated name",  # pandas renames a repeated column: Arrow steps aside
        "bom",  # a byte-order mark before the header
        "crlf",  # Windows line ends
    ],
)
def test_odd_but_valid_files_give_the_same_bytes(
    service: ModelInferenceService, tmp_path: Path, text: pd.DataFrame, change: str
) -> None:
    frame = text.copy()
    content = None
    if change == "missing words":
        frame.loc[frame.index[:40:3], INTENSITY] = "NA"
        frame.loc[frame.index[1:40:3], INTENSITY] = "None"
    elif change == "comma":
        frame.loc[frame.index[5], "note"] = "pass 1, late"
    elif change == "leading zeros":
        frame[SENSOR_ID] = "00" + frame[SENSOR_ID]
    elif change == "spaces":
        frame.loc[frame.index[7], "altitude"] = " " + frame.loc[frame.index[7], "altitude"]
    elif change == "repeated name":  # a second "note" column: pandas calls it "note.1"
        frame["note2"] = frame["note"]
        header, body = _csv(frame).split("\n", 1)
        content = header.replace("note2", "note") + "\n" + body
    content = content if content is not None else _csv(frame)
    if change == "short row":  # the last row loses its note and the cells after it
        lines = content.splitlines()
        lines[-1] = ",".join(lines[-1].split(",")[:3])
        content = "\n".join(lines) + "\n"
    if change == "bom":
        content = "\ufeff" + content
    if change == "crlf":
        content = content.replace("\n", "\r\n")
    if change == "short row":  # pandas pads it: its sensor is missing
        by_pandas_error, by_arrow_error = _errors(service, tmp_path, content)
        assert by_arrow_error == by_pandas_error and "has missing values" in by_arrow_error
        return
    by_pandas, by_arrow = _both(service, tmp_path, content, chunk_rows=300)
    assert by_arrow == by_pandas


@pytest.mark.parametrize(
    ("column", "cell", "problem"),
    [
        (TRACK_ID, "0x10", "is not a number"),  # Arrow's integer cast reads hexadecimal
        (TRACK_ID, "3.5", "is not an integer"),
        (TRACK_ID, "", "has missing values"),
        ("latitude", "north", "is not a number"),
        ("latitude", "95", "is outside"),
        ("altitude", "inf", "has infinite values"),
    ],
)
def test_bad_cells_give_pandas_messages(
    service: ModelInferenceService,
    tmp_path: Path,
    text: pd.DataFrame,
    column: str,
    cell: str,
    problem: str,
) -> None:
    frame = text.copy()
    frame.loc[frame.index[250], column] = cell
    by_pandas, by_arrow = _errors(service, tmp_path, _csv(frame), chunk_rows=100)
    assert by_arrow == by_pandas
    assert problem in by_arrow and "line 252" in by_arrow


@pytest.mark.parametrize("content", ["", "timestamp,track_id\n", "a,b\n1,2\n"])
def test_files_without_rows_or_columns_fail_as_with_pandas(
    service: ModelInferenceService, tmp_path: Path, content: str
) -> None:
    by_pandas, by_arrow = _errors(service, tmp_path, content)
    assert by_arrow == by_pandas
