"""What `wharf monit` draws, rendered into a fixed-size console as text."""

from rich.console import Console

from tests.unit.cli.monit.test_model import backend, row
from wharf.cli.monit.model import Key, Monitor
from wharf.cli.monit.view import fit_columns, render


def screen(monitor, width=100, height=30):
    console = Console(width=width, height=height, record=True, color_system=None,
                      force_terminal=False)
    console.print(render(monitor, width, height))
    return console.export_text()


def monitor():
    m = Monitor()
    m.set_status([row("web", 0, pid=4242, cpu_percent=1.25, rss_bytes=20 << 20, ready=True),
                  row("web", 1, pid=4243), row("worker", 0, pid=None, state="BACKOFF",
                                                   next_try_in_s=2.0),
                  backend("web", "127.0.0.1:8001")])
    m.logs.add("out", "2026-01-01 web.0 | hello\n")
    return m


def test_the_process_list_has_the_pm2_columns_and_marks_the_selected_app():
    text = screen(monitor())
    header = next(line for line in text.splitlines() if "APP" in line)
    for column in ("APP", "INST", "STATE", "PID", "CPU", "MEM", "RESTARTS", "UPTIME", "READY"):
        assert column in header
    first = next(line for line in text.splitlines() if "4242" in line)
    assert first.split()[1:3] == [">", "web"]
    assert "1.2%" in first and "20.0M" in first and "yes" in first
    assert "BACKOFF (next try in 2.0s)" in text


def test_the_selected_apps_backends_and_logs_are_shown():
    text = screen(monitor())
    assert "Backends: web" in text and "127.0.0.1:8001" in text and "up" in text
    assert "Logs: web" in text and "web.0 | hello" in text
    assert "r restart web" in text


def test_an_app_with_no_route_says_so():
    m = monitor()
    m.move(Key.DOWN)
    assert "no route sends to worker" in screen(m)


def test_the_screen_is_exactly_as_tall_as_the_terminal():
    for height in (45, 24, 12, 6):
        assert len(screen(monitor(), height=height).splitlines()) <= height


def test_a_narrow_terminal_drops_the_least_needed_columns_not_the_pid():
    text = screen(monitor(), width=50)
    assert "4242" in text and "RUNNING" in text and "20.0M" in text
    assert "READY" not in text
    assert "web    RUN… 4242" not in text  # cut to fit, but a cut that still reads


def test_fit_columns_drops_ready_first():
    header = [" ", "APP", "INST", "STATE", "PID", "CPU", "MEM", "RESTARTS", "UPTIME", "READY"]
    cells = [[">", "web", "0", "RUNNING", "4242", "0.0%", "9.0M", "0", "3s", "yes"]]
    assert list(fit_columns(header, cells, 200)) == list(range(10))
    shown = [header[i] for i in fit_columns(header, cells, 60)]
    assert shown == [" ", "APP", "INST", "STATE", "PID", "CPU", "MEM", "UPTIME"]
