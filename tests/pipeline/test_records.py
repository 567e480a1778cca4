import dataclasses
import io

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


def test_records_pickle_as_class_and_values_and_old_pickles_still_load():
    import copyreg
    import pickle

    from pipeline.records import BlobRef, ResizedImage

    pair = AltPair(key="k", page_url="p", image_url="i", caption="c", extra=(("a", "1"),))
    image = ResizedImage(pair=pair, data=b"", ext="jpg", width=2, height=3, original_width=4, original_height=5,
                         sha256="s", final_url="f", mime="image/jpeg", blob=BlobRef("/w/x.blob", 7, 9))
    for record in (pair, image, Rejection.of(pair, DropReason.FETCH_TIMEOUT, "d")):
        assert pickle.loads(pickle.dumps(record, 4)) == record
        assert record.__reduce__()[0] is type(record)
    # Pickles in the dataclass's own state format (what --resume may find from an older run).

    class StatePickler(pickle.Pickler):
        def reducer_override(self, obj):
            if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
                return copyreg.__newobj__, (type(obj),), obj.__getstate__()
            return NotImplemented

    buf = io.BytesIO()
    StatePickler(buf, 4).dump(image)
    assert buf.getvalue() != pickle.dumps(image, 4) and pickle.loads(buf.getvalue()) == image
