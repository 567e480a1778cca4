"""The Rule protocol and ApplyRules, the one PTransform every filter stage uses.

Input: stage records (any type carrying an ``AltPair``). Output: ``(kept,
rejected)``: records every rule passed, and a ``Rejection`` for the first rule
that failed, with its reason code and a detail. Rules are checked in order; the
first failing rule names the reason, so order specific rules before general ones.
"""

from __future__ import annotations

from typing import Optional, Protocol, Sequence

import apache_beam as beam

from pipeline import metrics
from pipeline.records import DropReason, Rejection, pair_of

Verdict = Optional[tuple[DropReason, str]]


class Rule(Protocol):
    """A named check: ``None`` keeps the record, ``(reason, detail)`` drops it."""

    name: str

    def check(self, record) -> Verdict: ...


def first_failure(rules: Sequence[Rule], record) -> Verdict:
    for rule in rules:
        verdict = rule.check(record)
        if verdict is not None:
            return verdict
    return None


def route(record, verdict: Verdict):
    """The record itself (kept), or its Rejection on the ``rejected`` output, counted by reason."""
    if verdict is None:
        return record
    reason, detail = verdict
    metrics.inc_reason(reason)
    return beam.pvalue.TaggedOutput("rejected", Rejection.of(pair_of(record), reason, detail))


class _ApplyRulesFn(beam.DoFn):
    def __init__(self, rules: Sequence[Rule]):
        self.rules = tuple(rules)

    def process(self, record):
        yield route(record, first_failure(self.rules, record))


class ApplyRules(beam.PTransform):
    """records -> (kept, rejected) under an ordered list of rules."""

    def __init__(self, rules: Sequence[Rule]):
        super().__init__()
        self.rules = tuple(rules)

    def expand(self, records):
        out = records | "Check" >> beam.ParDo(_ApplyRulesFn(self.rules)).with_outputs("rejected", main="kept")
        return out.kept, out.rejected
