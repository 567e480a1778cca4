"""Guards of BalanceByMetadata (transforms/balance.py, transforms/balance_match.py), each switched off in turn.

Off, the keep draw is random (a rerun keeps other pairs), an entry matches inside longer words
("dog" in "hotdogs"), a bad metadata file or t_by_language item passes into the run, or one
caption that is not text kills the run instead of becoming balance.internal_error.
"""

import json
import random

import ahocorasick

from pipeline.records import AltPair
from tests.mutation.registry import Guard
from transforms.balance_match import Matcher, normalise

B = "tests/transforms/test_balance.py::"


def _random_draw(_key):
    return random.random()


def _substring_matcher(entries):
    automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    for entry_id, entry in enumerate(entries):
        automaton.add_word(entry, entry_id)  # no " entry " padding: any substring matches
    automaton.make_automaton()
    return Matcher(tuple(entries), automaton)


def _unchecked_entries(data, source="metadata"):
    text = data.decode("utf-8", "replace")
    raw = json.loads(text) if text.lstrip()[:1] in ("[", "{") and text.strip().endswith(("]", "}")) else text.splitlines()
    return tuple(sorted({normalise(str(e)) for e in raw}))


def _unchecked_t_by_language(items, languages):
    return tuple(sorted((i.partition("=")[0], int(i.partition("=")[2] or 0)) for i in items
                        if i.partition("=")[2].isdigit()))


def _unguarded_match(self, record, blob):
    from transforms.balance import matcher_for  # not at import: the plugin patches before the tests import

    pair = record if isinstance(record, AltPair) else record.pair
    ids = matcher_for(self.spec, blob).match(pair.caption or "")
    if ids:
        yield record, "", ids


GUARDS = [
    Guard("balance.draw_hashes_the_key", "transforms.balance:draw", _random_draw,
          (B + "test_stage_balances_a_skewed_pool_and_reruns_byte_identical",
           B + "test_draw_is_a_uniform_function_of_the_key")),
    Guard("balance.whole_words_only", "transforms.balance_match:build_matcher", _substring_matcher,
          (B + "test_match_whole_words_and_phrases",)),
    Guard("balance.metadata_checked", "transforms.balance_match:parse_entries", _unchecked_entries,
          (B + "test_bad_metadata_is_an_error_before_the_run",)),
    Guard("balance.t_by_language_checked", "transforms.balance:parse_t_by_language", _unchecked_t_by_language,
          (B + "test_bad_t_by_language_is_an_error",)),
    Guard("balance.caption_isolated", "transforms.balance:_MatchFn.process", _unguarded_match,
          (B + "test_stage_takes_records_after_the_download_and_isolates_a_bad_record",)),
]
