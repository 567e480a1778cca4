"""transforms.srcset: the WHATWG srcset parser and the candidate choice for the target size."""

import pytest

from transforms.srcset import Candidate, choose_candidate, parse_srcset, with_src


@pytest.mark.parametrize("value,expected", [
    ("a.jpg 300w, b.jpg 600w", [Candidate("a.jpg", 300), Candidate("b.jpg", 600)]),
    ("a.jpg, b.jpg 2x", [Candidate("a.jpg"), Candidate("b.jpg", None, 2.0)]),
    ("  a.jpg   1.5x ,b.jpg 3x  ", [Candidate("a.jpg", None, 1.5), Candidate("b.jpg", None, 3.0)]),
    # CDN transforms put commas inside URLs: only a comma after whitespace (or descriptors) splits
    ("https://c.test/w_300,h_200/x.jpg 300w, https://c.test/w_600,h_400/x.jpg 600w",
     [Candidate("https://c.test/w_300,h_200/x.jpg", 300), Candidate("https://c.test/w_600,h_400/x.jpg", 600)]),
    ("a.jpg, b.jpg 2x,", [Candidate("a.jpg"), Candidate("b.jpg", None, 2.0)]),  # trailing comma ends a URL
    ("a.jpg,b.jpg 2x", [Candidate("a.jpg,b.jpg", None, 2.0)]),  # as browsers: a comma inside a URL is its own
    ("a.jpg 100w 2x, b.jpg 0w, c.jpg -1x, d.jpg 10q, e.jpg 200w",  # invalid candidates are dropped
     [Candidate("e.jpg", 200)]),
    ("a.jpg 300w 200h", [Candidate("a.jpg", 300)]),  # future-compat h descriptor
    ("", []), (None, []), (" , , ", []),
])
def test_parse_srcset(value, expected):
    assert parse_srcset(value) == expected


W = [Candidate("s.jpg", 150), Candidate("m.jpg", 300), Candidate("l.jpg", 1024)]


@pytest.mark.parametrize("cands,target,declared,expected", [
    (W, 256, None, "m.jpg"),            # smallest >= target
    (W, 300, None, "m.jpg"),            # equal counts as big enough
    (W, 2000, None, "l.jpg"),           # none big enough: the widest
    (list(reversed(W)), 256, None, "m.jpg"),  # order does not matter
    ([Candidate("a.jpg", None, 1.0), Candidate("b.jpg", None, 2.0)], 256, 200, "b.jpg"),   # 2x*200 = 400
    ([Candidate("a.jpg", None, 1.0), Candidate("b.jpg", None, 2.0)], 256, 300, "a.jpg"),   # 1x*300 = 300
    ([Candidate("a.jpg", None, 1.0), Candidate("b.jpg", None, 2.0)], 256, None, "b.jpg"),  # unknown: densest
    ([Candidate("a.jpg", 300), Candidate("b.jpg", 300)], 256, None, "a.jpg"),  # first wins ties
])
def test_choose_candidate(cands, target, declared, expected):
    assert choose_candidate(cands, target, declared).url == expected


def test_choose_nothing():
    assert choose_candidate([], 256) is None


def test_src_is_the_implicit_1x_of_a_density_set():
    assert with_src([Candidate("b.jpg", None, 2.0)], "a.jpg") == [Candidate("b.jpg", None, 2.0),
                                                                   Candidate("a.jpg", None, 1.0)]
    assert with_src([Candidate("b.jpg", 600)], "a.jpg") == [Candidate("b.jpg", 600)]  # w sets: src has no width
    assert with_src([Candidate("b.jpg")], "a.jpg") == [Candidate("b.jpg")]  # already has a 1x


@pytest.mark.parametrize("value", [
    "a.jpg ３００w", "a.jpg ٣٠٠w", "a.jpg ²x", "a.jpg 300²w", "a.jpg " + "9" * 10_000 + "w", "a.jpg 1" + "0" * 9 + "w",
    "a.jpg 1e999x", "a.jpg 1e9999x", "a.jpg ３x", "a.jpg .x", "a.jpg 1.5.2x", "a.jpg 2x 300w",
    "a.jpg 300w " + "9" * 5000 + "h", "a.jpg +3x", "a.jpg 0x", "a.jpg 1e-999x",
])
def test_descriptors_are_ascii_bounded_and_finite(value):
    """Non-ASCII digits, huge or non-finite numbers make the candidate invalid, never an exception."""
    assert parse_srcset(value) == []
    assert parse_srcset(value + ", b.jpg 200w") == [Candidate("b.jpg", 200)]


def test_in_bounds_descriptors_still_parse():
    assert parse_srcset("a.jpg 999999999w, b.jpg 1e2x, c.jpg 300w 20h") == [
        Candidate("a.jpg", 999_999_999), Candidate("b.jpg", None, 100.0), Candidate("c.jpg", 300)]
