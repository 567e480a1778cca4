import pytest

from filters.image_rules import ImageRulesSpec, image_verdict
from pipeline.records import DropReason

CFG = ImageRulesSpec(min_side=32, max_aspect=3.0)


@pytest.mark.parametrize("w,h,expected", [
    (256, 256, None),
    (320, 240, None),
    (96, 32, None),            # exactly 3:1 and exactly min side
    (16, 16, DropReason.IMAGE_TOO_SMALL),
    (1, 1, DropReason.IMAGE_TOO_SMALL),
    (400, 31, DropReason.IMAGE_TOO_SMALL),
    (728, 90, DropReason.IMAGE_BAD_ASPECT),
    (60, 600, DropReason.IMAGE_BAD_ASPECT),
])
def test_image_verdict(w, h, expected):
    verdict = image_verdict(w, h, CFG)
    assert (verdict[0] if verdict else None) == expected
