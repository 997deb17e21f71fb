"""The one error type of bad input and the small field checks every record schema uses."""
from __future__ import annotations

import math
from typing import Any, Callable

Record = dict[str, Any]
Validator = Callable[[Any, str], Record]


class DataError(ValueError):
    """Bad input data. ``str(err)`` is one line: ``file:line: field: problem``."""

    def __init__(self, where: str, field: str | None, problem: str):
        self.where, self.field, self.problem = where, field, problem
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")


def require_object(obj: Any, where: str) -> dict:
    if not isinstance(obj, dict):
        raise DataError(where, None, f"expected a JSON object, got {type(obj).__name__}")
    return obj


def require_str(obj: dict, key: str, where: str, prefix: str = "", *, allow_empty: bool = False) -> str:
    if key not in obj or obj[key] is None:
        raise DataError(where, f"{prefix}{key}", "missing")
    value = obj[key]
    if not isinstance(value, str):
        raise DataError(where, f"{prefix}{key}", f"expected a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise DataError(where, f"{prefix}{key}", "empty")
    return value


# log_softmax may round a sure prediction to a hair above 0; anything beyond this is not a log-probability.
LOGPROB_SLACK = 1e-6


def validate_logprob(value: Any, where: str, field: str) -> float:
    """A log-probability: a finite number <= 0 (``LOGPROB_SLACK`` allowed for rounding)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value > LOGPROB_SLACK:
        raise DataError(where, field, f"expected a log-probability (a finite number <= 0), got {value!r}")
    return float(value)


def validate_finite(value: Any, where: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(where, field, f"expected a finite number, got {value!r}")
    return float(value)
