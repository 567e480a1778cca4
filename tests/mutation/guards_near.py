"""Guards of near-duplicate verification (transforms/lsh.py, transforms/dedupe.py DedupeNear), each
switched off in turn.

Off, the colour guard links pictures with the same layout in other colours (a red and a grey
card of one pHash become one group). Off, the caption veto lets near-identical screens
captioned "... answer no" / "... answer yes" merge.
"""

from tests.mutation.registry import Guard

L = "tests/transforms/test_lsh.py::"


def _always_close(*_args, **_kwargs):
    return True


def _never_vetoed(*_args, **_kwargs):
    return False


GUARDS = [
    Guard("near.colour_guard", "transforms.lsh:colour_close", _always_close,
          (L + "test_verification_checks_distance_and_colour",
           L + "test_identical_hashes_with_other_colours_are_not_linked",
           "tests/transforms/test_dedupe.py::test_dedupe_near_groups_transitively_and_keeps_the_policy_survivor")),
    Guard("near.caption_veto", "transforms.dedupe:_vetoed", _never_vetoed,
          ("tests/transforms/test_dedupe.py::test_caption_veto_keeps_near_duplicates_whose_captions_tell_apart",
           "tests/transforms/test_dedupe.py::test_caption_veto_on_a_hot_endpoint")),
]
