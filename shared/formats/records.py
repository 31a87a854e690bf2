"""The one validating reader of cnnlab's JSON records: a run's ``metrics.json``, a study's ``comparison.json`` and an
export's sidecar. A record of the wrong shape (``{}``, ``[1, 2, 3]``, a field that is null or of another type) is
one line naming the file and the field, never a ``KeyError`` or ``TypeError`` deep inside a command.

A ``Record`` lists the fields a command relies on, each with the check it must pass and what it should be, in words.
Fields a record may lack (written by older versions) are not listed: their readers use ``.get``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable

from shared.formats import history
from shared.util.errors import RunDirError
from shared.util.paths import not_a_file

FRAMEWORKS = ("torch", "tf")


@dataclass(frozen=True)
class Field:
    name: str
    valid: Callable[[Any], bool]
    expected: str  # what a valid value is, in words


@dataclass(frozen=True)
class Record:
    what: str  # "run's metrics": the kind of file, in words
    fields: tuple[Field, ...]
    remedy: str  # what to do about a record that is not valid


def _text(value) -> bool:
    return isinstance(value, str) and value != ""


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _class_names(value) -> bool:
    return isinstance(value, list) and len(value) > 0 and all(map(_text, value))


def _epochs(value) -> bool:
    return isinstance(value, list) and len(value) > 0 and all(
        isinstance(record, dict) and _number(record.get(history.VAL_ACC)) and _number(record.get(history.TRAIN_ACC))
        for record in value)


_SHA256 = re.compile(r"^[0-9a-f]{64}$")

STATUS = Field("status", _text, "the run's status, a string such as \"complete\"")
_RUN = (
    Field("framework", lambda value: value in FRAMEWORKS, f"one of {', '.join(map(repr, FRAMEWORKS))}"),
    Field("arch", _text, "an architecture name"),
    Field("classes", _class_names, "a non-empty list of class names"),
    Field("image_size", _whole, "the input size in pixels, a positive whole number"),
)
_METRICS_REMEDY = "restore the file from a copy, or train the run again"

# metrics.json of a finished run: what evaluate, export, predict and compare read from it
FINISHED_METRICS = Record("run's metrics", (STATUS, *_RUN,
                          Field("history", _epochs, "a non-empty list of epoch records, each with train_acc and "
                                "val_acc numbers"),
                          Field("config", lambda value: isinstance(value, dict), "the run's settings, an object"),
                          Field("data", lambda value: isinstance(value, dict), "the run's data options, an object")),
                          _METRICS_REMEDY)
STUDY_TABLE = Record("study table", (
    Field("variants", lambda value: isinstance(value, dict) and len(value) > 0,
          "an object with a row per variant of the study"),
    Field("best", _text, "the folder of the best variant")), "restore the file from a copy, or train the study again")
# split.json: which images trained and which validated (rundir.write_split); its fields differ by data source
SPLIT = Record("run's split", (), _METRICS_REMEDY)
# An exported file's sidecar (shared.formats.exported.describe)
SIDECAR = Record("export's description", (
    *_RUN,
    Field("format", _text, "the export format"),
    Field("sha256", lambda value: isinstance(value, str) and bool(_SHA256.match(value)),
          "the exported file's sha256, 64 hex digits (recorded by exports since checksums were added)"),
), "export the run again (python -m cnnlab_torch.export or cnnlab_tf.export), which writes both files")


def validate(data: Any, record: Record, path: Path) -> dict:
    """``data`` when it is an object with every field of ``record`` valid; else ``RunDirError`` naming the file and
    the first field that is wrong."""
    if not isinstance(data, dict):
        raise RunDirError(f"{path} is not a cnnlab {record.what}: it holds a JSON {type(data).__name__}, not an "
                          f"object; {record.remedy}")
    for field in record.fields:
        if field.name not in data:
            problem = "is missing"
        elif not field.valid(data[field.name]):
            problem = f"is {_shown(data[field.name])}"
        else:
            continue
        raise RunDirError(f"{path}: field \"{field.name}\" {problem}; expected {field.expected}. The {record.what} "
                          f"is damaged or not cnnlab's; {record.remedy}")
    return data


def read_record(path: Path, record: Record) -> dict:
    """The JSON object in ``path``, validated against ``record``. Every failure is a ``RunDirError`` of one line."""
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path} {not_a_file(path)}; expected the {record.what}. "
                          f"{record.remedy[0].upper()}{record.remedy[1:]}")
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise RunDirError(f"{path} is damaged ({type(error).__name__}: {error}); the {record.what} cannot be read. "
                          f"{record.remedy[0].upper()}{record.remedy[1:]}") from None
    return validate(data, record, path)


def _shown(value) -> str:
    """A wrong value in a message: short, and JSON's own spelling (null, not None)."""
    text = json.dumps(value)
    return text if len(text) <= 40 else f"{text[:37]}..."
