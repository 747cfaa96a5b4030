"""The Date header line, formatted once a second."""

from wharf.proxy.date import HttpDate


def test_the_line_is_an_imf_fixdate_of_the_second():
    date = HttpDate()
    date.refresh(1_000_000_000.75)
    assert date.line == b"Date: Sun, 09 Sep 2001 01:46:40 GMT\r\n"


def test_the_line_is_formatted_again_only_in_a_new_second():
    date = HttpDate()
    date.refresh(1_000_000_000.1)
    line = date.line
    date.refresh(1_000_000_000.9)
    assert date.line is line
    date.refresh(1_000_000_001.0)
    assert date.line == b"Date: Sun, 09 Sep 2001 01:46:41 GMT\r\n"
