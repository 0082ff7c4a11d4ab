"""Every log line is standard JSON, whatever a caller puts in it (non-finite numbers, lone surrogates)."""

from __future__ import annotations

import io
import json
import logging

from trademon.runtime import logs


def test_a_log_line_with_nan_infinity_and_a_lone_surrogate_is_standard_json():
    stream = io.StringIO()
    formatter = logs.JsonFormatter("t")
    record = logging.LogRecord("t", logging.WARNING, __file__, 1, "bad \ud800 name", (), None)
    record.value = float("nan")
    record.values = {"up": float("inf"), "down\udc00": [float("-inf"), 1.5]}
    line = formatter.format(record)
    stream.write(line)  # a lone surrogate would not encode on a UTF-8 stream

    def refuse(name):
        raise ValueError(name)

    doc = json.loads(line, parse_constant=refuse)
    line.encode("utf-8")
    assert doc["value"] == "nan" and doc["values"]["up"] == "inf" and doc["values"]["down\\udc00"] == ["-inf", 1.5]
    assert doc["message"] == "bad \\ud800 name"
