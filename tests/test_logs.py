import io
import json
import logging

from trademon.runtime import logs


def test_json_lines_with_context_and_redaction():
    buf = io.StringIO()
    logs.setup("unit", stream=buf)
    logs.register_secret("123456:ABCDEF-secret")
    logging.getLogger("trademon.x").warning("sending with token 123456:ABCDEF-secret", extra={"order_id": 42})
    line = json.loads(buf.getvalue().strip().splitlines()[-1])
    assert line["level"] == "warning" and line["logger"] == "trademon.x" and line["service"] == "unit"
    assert line["order_id"] == 42
    assert "ABCDEF-secret" not in buf.getvalue() and "***" in line["message"]
    assert line["time"].endswith("Z")


def test_lines_that_differ_by_their_context_are_never_held_back_as_repeats():
    """The start-up lines of a stack ("service up", one per service) are one template with a
    different service each: none may be taken for a repeat and dropped."""
    buf = io.StringIO()
    logs.setup("unit", stream=buf)
    names = [f"svc-{i}" for i in range(3 * logs.RepeatLimiter().burst)]
    for name in names:
        logging.getLogger("trademon.native").info("service up", extra={"svc": name, **logs.DISTINCT})
    up = [json.loads(line) for line in buf.getvalue().splitlines() if '"service up"' in line]
    assert [d["svc"] for d in up] == names
    assert all("_distinct" not in d and "distinct" not in d for d in up)
    for _ in range(3 * logs.RepeatLimiter().burst):  # the same line without that mark is still limited
        logging.getLogger("trademon.x").info("again and again")
    assert buf.getvalue().count("again and again") == logs.RepeatLimiter().burst
