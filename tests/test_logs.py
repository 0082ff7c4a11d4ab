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
