"""`wharf monit`'s state: keys, the selection, the log tail, and how the screen is shared."""

from wharf.cli.monit.model import FRAME, Key, LogTail, Monitor, decode_keys, plan, window


def row(app, instance=0, **fields):
    return {"kind": "instance", "app": app, "instance": instance, "pid": 100 + instance,
            "state": "RUNNING", "restarts": 0, "uptime_s": 1.0, **fields}


def backend(app, address):
    return {"kind": "backend", "app": app, "route": "/", "backend": address, "health": "up",
            "ejected": False, "inflight": 0, "last_error": ""}


def test_arrows_in_both_cursor_modes_and_vi_letters_are_moves():
    assert decode_keys(b"\x1b[A\x1bOA\x1b[B\x1bOBkj") == [Key.UP] * 2 + [Key.DOWN] * 2 + \
        [Key.UP, Key.DOWN]


def test_restart_quit_home_and_end_keys():
    assert decode_keys(b"rqQgG\x1b[H\x1b[4~") == [Key.RESTART, Key.QUIT, Key.QUIT, Key.HOME,
                                                   Key.END, Key.HOME, Key.END]


def test_unknown_sequences_are_skipped_whole_so_their_letters_are_not_keys():
    # Page Up, F1, F5, then a lone Escape: none is a key, and their letters (O, P, ~) neither.
    assert decode_keys(b"\x1b[5~\x1bOP\x1b[15~\x1bxr") == [Key.RESTART]


def test_the_first_app_is_selected_and_its_instances_together():
    m = Monitor()
    assert m.set_status([row("web", 0), row("web", 1), row("worker")]) is True
    assert m.selected == "web"
    assert m.selected_rows() == range(0, 2)
    assert m.set_status([row("web", 0), row("web", 1), row("worker")]) is False


def test_moves_go_app_by_app_and_stop_at_the_ends():
    m = Monitor()
    m.set_status([row("web", 0), row("web", 1), row("worker"), row("cron")])
    assert m.move(Key.DOWN) and m.selected == "worker"
    assert m.selected_rows() == range(2, 3)
    assert m.move(Key.END) and m.selected == "cron"
    assert not m.move(Key.DOWN)
    assert m.move(Key.HOME) and m.selected == "web"
    assert not m.move(Key.UP)


def test_moving_drops_the_previous_apps_logs():
    m = Monitor()
    m.set_status([row("web"), row("worker")])
    m.logs.add("out", "web line\n")
    m.move(Key.DOWN)
    assert m.logs.last(10) == []


def test_an_app_that_goes_away_hands_the_selection_to_its_neighbour():
    m = Monitor()
    m.set_status([row("a"), row("b"), row("c")])
    m.move(Key.END)
    assert m.set_status([row("a"), row("b")]) is True
    assert m.selected == "b"
    assert m.set_status([]) is False
    assert m.selected is None


def test_backends_shown_are_those_of_the_selected_app():
    m = Monitor()
    m.set_status([row("web"), row("api"), backend("web", "127.0.0.1:1"),
                  backend("api", "127.0.0.1:2")])
    assert [b["backend"] for b in m.selected_backends()] == ["127.0.0.1:1"]


def test_log_tail_joins_split_lines_and_shows_a_pending_one_last():
    tail = LogTail()
    tail.add("out", "one\ntw")
    tail.add("err", "oops\r\n")
    tail.add("out", "o\nthr")
    assert tail.last(10) == [("out", "one"), ("err", "oops"), ("out", "two"), ("out", "thr")]
    assert tail.last(2) == [("out", "two"), ("out", "thr")]
    assert tail.last(0) == []


def test_log_tail_keeps_only_the_newest_lines():
    tail = LogTail(keep=3)
    for i in range(5):
        tail.add("out", f"{i}\n")
    tail.note("the stream ended\nwhy")
    assert tail.last(10) == [("out", "4"), ("note", "the stream ended"), ("note", "why")]


def test_a_tall_terminal_shows_every_pane_whole():
    h = plan(45, processes=4, backends=2)
    assert (h.processes, h.backends) == (FRAME + 4, FRAME + 2)
    assert h.processes + h.backends + h.logs == 44  # and the footer


def test_many_processes_leave_room_for_some_logs():
    h = plan(24, processes=100, backends=2)
    assert h.logs >= FRAME + 2
    assert h.processes + h.backends + h.logs == 23


def test_a_tiny_terminal_still_shows_the_process_list():
    h = plan(8, processes=3, backends=2)
    assert (h.processes, h.backends, h.logs) == (FRAME + 3, 0, 0)
    assert plan(3, processes=3, backends=0).processes == 2
    assert plan(0, processes=3, backends=0) == plan(1, processes=3, backends=0)


def test_window_keeps_the_selection_in_view():
    assert window(5, range(4, 5), 10) == range(0, 5)
    assert window(100, range(0, 2), 10) == range(0, 10)
    assert window(100, range(50, 52), 10) == range(42, 52)
    assert window(100, range(98, 100), 10) == range(90, 100)
    assert window(100, range(5, 20), 10) == range(5, 15)  # the app's first rows, at least
    assert window(5, range(0, 1), 0) == range(0)


def _traffic(ok: int, errors: int) -> dict:
    return {"backends": [{"service": "app:web", "backend": "127.0.0.1:9000",
                          "requests": [0, 0, ok, 0, 0, errors]}]}


def test_backend_rates_are_the_difference_of_two_readings_over_their_time():
    from wharf.cli.monit.model import Rates

    rates = Rates()
    assert rates.of("app:web", "127.0.0.1:9000") is None
    rates.take(_traffic(100, 0), 10.0)
    assert rates.of("app:web", "127.0.0.1:9000") is None  # one reading: no rate yet
    rates.take(_traffic(140, 10), 12.0)
    per_s, errors, total = rates.of("app:web", "127.0.0.1:9000")
    assert (per_s, errors, total) == (25.0, 0.2, 150)
    rates.take(None, 13.0)  # a daemon that counts nothing changes nothing
    assert rates.of("app:web", "127.0.0.1:9001") is None
