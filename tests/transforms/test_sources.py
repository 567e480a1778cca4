"""transforms.sources: seed lines that are no usable URL are logged and skipped, never raised."""

import logging

import pytest
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import local_test_pipeline
from transforms.sources import ReadSeeds, parse_seed_line
from transforms.url_guard import MAX_URL_CHARS


@pytest.mark.parametrize("line,expected", [
    ("http://a.test/", "http://a.test/"),
    ("  https://a.test/x?y=1  \n", "https://a.test/x?y=1"),
    ("# a comment", None), ("", None), ("   ", None),
    ("ftp://a.test/", None), ("a.test/x", None), ("http:///nohost", None),
    ("http://[::1", None), ("http://[oops/", None), ("//[x]", None), ("http://h:99999/", None), ("http://h:abc/", None),
    ("http://a.test/" + "x" * (MAX_URL_CHARS - 14), "http://a.test/" + "x" * (MAX_URL_CHARS - 14)),
    ("http://a.test/" + "x" * (MAX_URL_CHARS - 13), None),
])
def test_parse_seed_line(line, expected):
    assert parse_seed_line(line) == expected


def test_a_skipped_seed_is_logged_with_why(caplog):
    with caplog.at_level(logging.WARNING, logger="transforms.sources"):
        assert parse_seed_line("http://[::1/") is None
        assert parse_seed_line("http://a.test/" + "x" * 3000) is None
    assert "Invalid IPv6 URL" in caplog.text and "over the 2048 limit (not cut)" in caplog.text


def test_a_seeds_file_with_a_latin1_byte_keeps_its_good_lines(tmp_path):
    path = tmp_path / "seeds.txt"
    path.write_bytes(b"http://a.example/\nhttp://b.example/caf\xe9\n# comment\nhttp://c.example/x\n")
    p = local_test_pipeline()
    seeds = p | ReadSeeds(str(path))
    assert_that(seeds, equal_to(["http://a.example/", "http://c.example/x"]))
    p.run().wait_until_finish()
