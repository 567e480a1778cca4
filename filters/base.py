"""The Rule protocol and ApplyRules, the one PTransform every filter stage uses.

Input: stage records (any type carrying an ``AltPair``). Output: ``(kept,
rejected)``: records every rule passed, and a ``Rejection`` for the first rule
that failed, with its reason code and a detail. Rules are checked in order; the
first failing rule names the reason, so order specific rules before general ones.

A rule that raises an unexpected exception on one record rejects that record as
its stage's ``<stage>.internal_error`` (pipeline/faults.py: the detail names the
exception and where): the rule's ``internal_error`` attribute if it has one, else
the code named by the prefix of its ``name`` (``caption_language`` ->
``caption.internal_error``), else ``filter.internal_error``.
"""

from __future__ import annotations

from typing import Optional, Protocol, Sequence

import apache_beam as beam

from pipeline import faults, metrics
from pipeline.records import DropReason, Rejection, pair_of

Verdict = Optional[tuple[DropReason, str]]


class Rule(Protocol):
    """A named check: ``None`` keeps the record, ``(reason, detail)`` drops it."""

    name: str

    def check(self, record) -> Verdict: ...


def internal_reason(rule) -> DropReason:
    """The ``<stage>.internal_error`` code of a rule (see the module docstring)."""
    declared = getattr(rule, "internal_error", None)
    if isinstance(declared, DropReason):
        return declared
    prefix = str(getattr(rule, "name", "") or "").split("_", 1)[0]
    try:
        return DropReason(f"{prefix}{faults.INTERNAL_SUFFIX}")
    except ValueError:
        return DropReason.FILTER_INTERNAL


def check_isolated(rule, record) -> Verdict:
    """``rule.check(record)``, with an unexpected exception as the record's internal-error verdict."""
    try:
        return rule.check(record)
    except Exception as exc:  # a rule that one record trips rejects that record, not the run
        reason = internal_reason(rule)
        try:
            item = pair_of(record).key
        except Exception:  # a record with no pair: still one bounded detail
            item = type(record).__name__
        return reason, faults.internal_error(reason, exc, f"{getattr(rule, 'name', '?')} on {item}")


def first_failure(rules: Sequence[Rule], record) -> Verdict:
    for rule in rules:
        verdict = check_isolated(rule, record)
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
