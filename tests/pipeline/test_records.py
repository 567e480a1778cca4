import dataclasses

import pytest

from pipeline.records import AltPair, DropReason, Rejection, make_key


def test_keys_are_stable_hex_without_dots():
    k = make_key("http://a/b.html", 3)
    assert k == make_key("http://a/b.html", 3)
    assert k != make_key("http://a/b.html", 4)
    assert "." not in k and all(c in "0123456789abcdef" for c in k)


def test_reason_codes_name_their_stage():
    for reason in DropReason:
        stage, _, name = reason.value.partition(".")
        assert stage and name and reason.stage == stage


def test_rejection_is_bounded_and_carries_the_pair():
    pair = AltPair(key="k", page_url="p", image_url="i", caption="c")
    rej = Rejection.of(pair, DropReason.FETCH_TIMEOUT, "x" * 10_000)
    assert (rej.stage, rej.reason, rej.page_url, rej.image_url, rej.caption) == ("fetch", "fetch.timeout", "p", "i", "c")
    assert len(rej.detail) <= 300


def test_records_are_immutable():
    pair = AltPair(key="k", page_url="p", image_url="i", caption="c")
    with pytest.raises(dataclasses.FrozenInstanceError):
        pair.caption = "other"
