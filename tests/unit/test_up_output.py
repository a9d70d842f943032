"""What `ordersaga up` shows of its replicas' lines."""

import json

import pytest

from ordersaga.cli import up


def test_off_a_terminal_a_json_line_goes_on_as_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    line = json.dumps({"level": "INFO", "service": "stock", "replica": "stock-1", "message": "hi"})
    up.show_line("stock-1", "stock", line)
    assert capsys.readouterr().out == line + "\n"


def test_any_other_line_is_shown_after_its_replica(capsys: pytest.CaptureFixture[str]) -> None:
    up.show_line("stock-1", "stock", "12:00:00.000 INFO    stock-1 ordersaga.x: hi")
    shown = capsys.readouterr().out
    assert shown.startswith("stock-1") and "| 12:00:00.000 INFO" in shown
