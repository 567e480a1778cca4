"""Guards of the distributed connected components (transforms/components.py) and the salted join
(transforms/hot_join.py), each switched off in turn.

Off, the residual finisher or the convergence check leaves a component that the rounds did not
finish split in several groups; the salted join puts a hot key on one key again.
"""

from tests.mutation.registry import Guard

C = "tests/transforms/test_components.py::"


def _nothing(*_args, **_kwargs):
    return iter(())


GUARDS = [
    Guard("components.residual_finisher", "transforms.components:finish_residual", _nothing,
          (C + "test_one_round_leaves_a_residual_and_the_finisher_still_gives_the_groups",)),
    Guard("components.convergence_check", "transforms.components:_unfinished", _nothing,
          (C + "test_one_round_leaves_a_residual_and_the_finisher_still_gives_the_groups",)),
    Guard("hot_join.hot_keys_salted", "transforms.hot_join:salts_for", lambda count, per_key: 1,
          (C + "test_salted_join_spreads_a_hot_key_and_keeps_equal_values_together",
           "tests/transforms/test_dedupe.py::test_dedupe_urls_spreads_a_hot_url_over_many_keys")),
]
