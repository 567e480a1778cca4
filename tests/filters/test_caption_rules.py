import pytest

from filters.caption_rules import caption_verdict
from pipeline.config import CaptionConfig
from pipeline.records import DropReason

CFG = CaptionConfig()

CASES = [
    ("a red circle on a blue background", None),
    ("Two green triangles on white", None),
    ("", DropReason.CAPTION_EMPTY),
    ("   \t ", DropReason.CAPTION_EMPTY),
    ("...", DropReason.CAPTION_EMPTY),
    ("IMG_0042.JPG", DropReason.CAPTION_FILENAME),
    ("DSC01234.jpg", DropReason.CAPTION_FILENAME),
    ("DSC01234", DropReason.CAPTION_FILENAME),
    ("holiday photo.png", DropReason.CAPTION_FILENAME),
    ("0f3a9c5e7b2d4a1f8e6c", DropReason.CAPTION_FILENAME),
    ("images/uploads/banner-2.gif", DropReason.CAPTION_FILENAME),
    ("https://example.com/a.html", DropReason.CAPTION_URL),
    ("www.example.org", DropReason.CAPTION_URL),
    ("logo", DropReason.CAPTION_PLACEHOLDER),
    ("Click here", DropReason.CAPTION_PLACEHOLDER),
    ("Image", DropReason.CAPTION_PLACEHOLDER),
    ("next", DropReason.CAPTION_NAVIGATION),
    ("«", DropReason.CAPTION_NAVIGATION),
    ("→", DropReason.CAPTION_NAVIGATION),
    ("Home", DropReason.CAPTION_NAVIGATION),
    ("red", DropReason.CAPTION_TOO_SHORT),
    ("a dog", DropReason.CAPTION_TOO_SHORT),
    ("a b c", DropReason.CAPTION_TOO_SHORT),  # 3 words but 5 characters
    (" ".join(["word"] * 65), DropReason.CAPTION_TOO_LONG),
]


@pytest.mark.parametrize("caption,expected", CASES)
def test_caption_verdict(caption, expected):
    verdict = caption_verdict(caption, CFG)
    assert (verdict[0] if verdict else None) == expected


def test_thresholds_are_configurable():
    loose = CaptionConfig(min_words=1, min_chars=1)
    assert caption_verdict("red", loose) is None
    assert caption_verdict("red", CFG)[0] == DropReason.CAPTION_TOO_SHORT


def test_detail_is_bounded():
    reason, detail = caption_verdict("x" * 5000 + ".jpg", CFG)
    assert reason == DropReason.CAPTION_FILENAME
    assert len(detail) <= 80
