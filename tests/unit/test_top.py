"""`virttui top --batch`: per-domain rates streamed as text, CSV or JSON lines."""

from __future__ import annotations

import csv
import io
import json

import pytest

from virttui.cli import main
from virttui.cli.topbatch import FIELDS, run_batch


def run(demo, clock, fmt, iterations=2):  # noqa: ANN001, ANN201
    out = io.StringIO()
    code = run_batch(demo.drivers, delay=2.0, iterations=iterations, fmt=fmt, out=out,
                     sleep=clock.advance, now=lambda: 0.0)
    return code, out.getvalue()


def test_csv_has_one_header_and_a_row_per_domain_per_iteration(demo, clock):
    code, text = run(demo, clock, "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert code == 0 and tuple(csv.reader(io.StringIO(text)).__next__()) == FIELDS
    assert len(rows) == 2 * 25
    web = next(r for r in rows if r["domain"] == "web-01")
    assert web["state"] == "running" and 0 < float(web["cpu_percent"]) <= 100
    assert float(web["disk_read_bps"]) > 0 and float(web["net_rx_bps"]) > 0
    off = next(r for r in rows if r["domain"] == "build-runner")
    assert off["cpu_percent"] == "" and off["memory_used_kib"] == ""


def test_json_lines_one_object_per_iteration(demo, clock):
    _, text = run(demo, clock, "json", iterations=3)
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 3 and all(len(obj["domains"]) == 25 for obj in lines)
    used = [d["memory_used_kib"] for d in lines[0]["domains"] if d["state"] == "running"]
    assert any(u is None for u in used) and any(isinstance(u, int) for u in used)  # balloon stats or n/a


def test_text_shows_na_for_missing_figures(demo, clock):
    _, text = run(demo, clock, "text", iterations=1)
    assert "%CPU" in text and "n/a" in text and "web-01" in text


def test_cli_validates_its_arguments(capsys):
    assert main(["top", "--batch", "-n", "0", "--demo"]) == 2
    assert "iterations" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["top", "--batch", "--csv", "--json"])


def test_a_failed_host_is_reported_and_sets_the_exit_code(clock, capsys):
    code = main(["top", "--batch", "--json", "-d", "0.1", "-n", "1", "-c", "test:///nonexistent/node.xml"])
    line = json.loads(capsys.readouterr().out)
    assert code == 1 and line["errors"] and "nonexistent" in line["errors"][0]


def test_csv_reports_a_failed_host_on_stderr(capsys):
    code = main(["top", "--batch", "--csv", "-d", "0.1", "-n", "1", "-c", "test:///default",
                 "-c", "test:///nonexistent/node.xml"])
    captured = capsys.readouterr()
    assert code == 1 and "nonexistent" in captured.err and "nonexistent" not in captured.out


def test_a_host_named_twice_is_one_host(capsys):
    code = main(["top", "--batch", "--json", "-d", "0.1", "-n", "1", "-c", "test:///default", "-c", "test:///default"])
    line = json.loads(capsys.readouterr().out)
    assert code == 0 and len({d["uuid"] for d in line["domains"]}) == len(line["domains"]) > 0


@pytest.mark.parametrize("interval", ["-1", "0", "nan", "inf", "0.01"])
def test_a_poll_interval_out_of_range_is_a_one_line_error(interval, capsys):
    assert main(["--poll-interval", interval, "top", "--batch", "-n", "1", "--demo"]) == 2
    assert "--poll-interval" in capsys.readouterr().err


def test_csv_on_a_terminal_shows_control_characters_as_question_marks(tmp_path, clock):
    """A C1 control character (U+009B, CSI) is valid in libvirt's XML and would be obeyed by a terminal."""
    from virttui.drivers.testdriver import TestDriver

    node = tmp_path / "node.xml"
    node.write_text('<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>1</cores><threads>1</threads></cpu>'
                    '<memory>1048576</memory><domain type="test"><name>evil\u009b2Jname</name>'
                    '<uuid>00000000-0000-0000-0000-000000000001</uuid><memory unit="MiB">64</memory><vcpu>1</vcpu>'
                    '<os><type arch="x86_64">hvm</type></os></domain></node>', encoding="utf-8")
    driver = TestDriver(f"test://{node}", str(node), lease_dir=str(tmp_path / "leases"), clock=clock)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for out, expected in ((Terminal(), "evil?2Jname"), (io.StringIO(), "evil\u009b2Jname")):
        run_batch([driver], delay=2.0, iterations=1, fmt="csv", out=out, sleep=clock.advance, now=lambda: 0.0)
        assert next(csv.DictReader(io.StringIO(out.getvalue())))["domain"] == expected
    driver.close()
