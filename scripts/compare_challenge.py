"""Compare the ``challenge`` profile with a real labeled track, statistic by statistic.

Usage:
    python scripts/compare_challenge.py REFERENCE.csv [--tracks 200] [--seed 0] [--plot PNG]

For every measured fact of the public data (docs/simulator.md) it prints the reference track's
value and the 5th, 50th and 95th percentiles over simulated tracks, and whether the reference
lies inside that band. The reference copy we have has timestamps rounded to whole seconds, so
sampling-based statistics use row counts, not timestamps.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from missile_classifier.schema import validate_frame
from missile_classifier.simulation.challenge import simulate_challenge


def load_tracks_frame(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate a labeled frame read by hand."""
    return validate_frame(frame, source, require_labels=True)[0]


def track_statistics(track: pd.DataFrame) -> dict[str, float]:
    """Measure one track the way the public data's facts were measured (docs/simulator.md)."""
    altitude = track["altitude"].to_numpy()
    n, peak = len(altitude), altitude.max()
    steps = np.diff(altitude)
    up, down = steps > 1, steps < -1
    rows = np.arange(n)
    label = track["reentry_phase"].to_numpy()
    onset = int(np.argmax(label))
    slope, intercept = np.polyfit(altitude, track["radiometric_intensity"], 1)
    residual = track["radiometric_intensity"] - (slope * altitude + intercept)
    stats = {
        "rows": float(n),
        "max altitude (km)": peak / 1000,
        "climb per sample (m)": float(steps[up].mean()),
        "descent per sample (m)": float(-steps[down].mean()),
        "descent steps - ascent steps": float(down.sum() - up.sum()),
        "ascent share": up.sum() / n,
        "plateau share": (n - up.sum() - down.sum()) / n,
        "plateau jitter σ (m)": float(altitude[np.abs(altitude - peak) < 1].std()),
        "intensity per 100 km": slope * 100_000,
        "intensity intercept": float(intercept),
        "intensity noise σ": float(residual.std()),
        "reentry share": float(label.mean()),
        "onset altitude / max": altitude[onset] / peak,
        "altitude before onset / max": altitude[onset - 1] / peak,
    }
    for column in ("latitude", "longitude"):
        x = track[column].to_numpy()
        start, end = np.polyval(np.polyfit(rows, x, 1), [0, n - 1])
        stats[f"{column} start"], stats[f"{column} end"] = start, end
        # Second differences of white noise have variance 6 σ²; a straight line drops out.
        stats[f"{column} noise σ (deg)"] = float(np.std(np.diff(x, 2)) / np.sqrt(6))
    return stats


def compare(reference: pd.DataFrame, simulated: pd.DataFrame) -> pd.DataFrame:
    """Table of reference value vs simulated percentiles for every statistic."""
    ref = track_statistics(reference)
    sim = pd.DataFrame([track_statistics(t) for _, t in simulated.groupby("track_id")])
    table = pd.DataFrame(
        {
            "reference": pd.Series(ref),
            "sim p5": sim.quantile(0.05),
            "sim median": sim.median(),
            "sim p95": sim.quantile(0.95),
        }
    )
    table["inside"] = (table["reference"] >= table["sim p5"]) & (
        table["reference"] <= table["sim p95"]
    )
    return table


def plot(reference: pd.DataFrame, simulated: pd.DataFrame, path: Path) -> None:
    """Reference track beside the simulated track closest to it in length and maximum."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = simulated.groupby("track_id").agg(rows=("altitude", "size"), peak=("altitude", "max"))
    ref_rows, ref_peak = len(reference), reference["altitude"].max()
    distance = (sizes["rows"] - ref_rows).abs() / 600 + (sizes["peak"] - ref_peak).abs() / 19_000
    twin = simulated[simulated["track_id"] == distance.idxmin()]
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.5), sharex=True)
    panels = [
        ("altitude", "altitude (km)", 1e-3),
        ("radiometric_intensity", "radiometric intensity", 1.0),
        ("latitude", "latitude (°)", 1.0),
        ("longitude", "longitude (°)", 1.0),
    ]
    for ax, (column, title, scale) in zip(axes.flat, panels, strict=True):
        for frame, name, style in (
            (reference, "reference track 0", "-"),
            (twin, "simulated", "--"),
        ):
            ax.plot(np.arange(len(frame)), frame[column] * scale, style, lw=1, label=name)
        ax.set_title(title)
    for frame, color in ((reference, "C0"), (twin, "C1")):
        onset = int(np.argmax(frame["reentry_phase"].to_numpy()))
        axes[0, 0].axvline(onset, color=color, lw=0.8, ls=":")
    axes[0, 0].legend(loc="upper right")
    for ax in axes[1]:
        ax.set_xlabel("sample (0.5 s)")
    fig.suptitle("challenge profile vs public track 0 (dotted: first reentry row)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path)
    parser.add_argument("--tracks", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    reference = pd.read_csv(args.reference)
    # The public copy rounded timestamps to whole seconds (so they repeat, which the validator
    # rightly rejects); the original spacing is 0.5 s.
    reference["timestamp"] = reference["timestamp"].iloc[0] + 0.5 * np.arange(len(reference))
    reference = load_tracks_frame(reference, str(args.reference))
    simulated = simulate_challenge(np.arange(args.tracks), seed=args.seed)
    table = compare(reference, simulated)
    with pd.option_context(
        "display.float_format", "{:.5g}".format, "display.width", 120, "display.max_columns", 10
    ):
        print(table)
    print(
        f"\n{int(table['inside'].sum())} of {len(table)} reference statistics inside the "
        f"simulated 5–95 % band ({args.tracks} tracks, seed {args.seed})"
    )
    if args.plot:
        plot(reference, simulated, args.plot)


if __name__ == "__main__":
    main()
