"""Column names of track data: the one place every part of the package reads them from.

Standard library only, because all three audiences need it: the simulator writes these columns,
training and ``predict`` read them from CSV files, and the service maps its JSON fields onto
them. (It sits beside the groups rather than in :mod:`missile_classifier.scoring` because the
simulator may not import scoring code.)
"""

from __future__ import annotations

from typing import Final

TIMESTAMP: Final = "timestamp"
TRACK_ID: Final = "track_id"
SENSOR_ID: Final = "sensor_id"
LATITUDE: Final = "latitude"
LONGITUDE: Final = "longitude"
ALTITUDE: Final = "altitude"
INTENSITY: Final = "radiometric_intensity"
LABEL: Final = "reentry_phase"

#: Columns of an unlabeled file, in the order we write them.
FEATURE_COLUMNS: Final = (TIMESTAMP, TRACK_ID, SENSOR_ID, LATITUDE, LONGITUDE, ALTITUDE, INTENSITY)
#: Columns of a labeled file, in the order we write them.
COLUMNS: Final = (*FEATURE_COLUMNS, LABEL)
#: A stream is the rows of one (track_id, sensor_id); rows are unique per stream and timestamp.
STREAM_KEY: Final = (TRACK_ID, SENSOR_ID)
#: Columns held as int64; every other schema column is float64.
INTEGER_COLUMNS: Final = (TRACK_ID, SENSOR_ID)
#: Columns the feature function reads, in its argument order.
INPUT_COLUMNS: Final = (TIMESTAMP, LATITUDE, LONGITUDE, ALTITUDE, INTENSITY)
#: What scoring needs of a row: its stream and the feature function's inputs.
SCORING_COLUMNS: Final = (TRACK_ID, SENSOR_ID, *INPUT_COLUMNS)
