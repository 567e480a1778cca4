"""BalanceByMetadata: MetaCLIP's balancing of alt-text pairs over metadata entries, no model needed.

Input: stage records carrying an ``AltPair`` (``AltPair`` before the download,
``ResizedImage`` after it; ``balance.before_fetch``). Output: ``(kept, rejected, stats)``.
Each caption is matched against the metadata entries (transforms/balance_match.py: whole words
or phrases, case-folded, one Aho-Corasick pass); the matches of every entry are counted over
the whole pool; a pair is then kept with probability ``1 - prod_e(1 - min(1, t / count_e))``
over its entries (Xu et al. 2023, "Demystifying CLIP Data", Algorithm 1), so an entry seen
fewer than ``t`` times keeps all its pairs and a head entry keeps about ``t``. The draw is a
hash of the pair's key, not a random number: a rerun keeps the same pairs on any runner, with
any bundling. Drop reasons: ``balance.no_match`` (no entry in the caption; MetaCLIP drops
these too), ``balance.downsampled`` (every entry over ``t`` and the draw said drop),
``balance.internal_error``. ``stats``: ``("balance", name, value)`` tuples for stats.json —
the entry-count distribution before and after (entries hit, matches, head share, entropy, the
top entries, a rank/count curve for the report's plot), ``top_kept`` (the kept matches of the
entries most matched before) and the settings used.

Languages (MetaCLIP 2): with ``balance.t_by_language`` ("de=5000") each caption's language is
identified among ``caption.languages`` (py3langid, ~170 us a caption, so only then), entries
are counted per (language, entry), and a language's pairs use its own ``t``.

Keys at 100M pairs. ``CountPerEntry`` is a CombinePerKey over (language, entry id), lifted:
its largest key is the most frequent entry (on LAION-like English alt text the WordNet entry
"in" or "photo", in ~10-40% of captions: up to ~40M matches), which reaches the shuffle as one
partial count per worker bundle. ``CountKeptPerEntry`` is the same over kept pairs (its largest
key is under the first). The keep/drop step reads, as a side input, only the entries counted
more than ``t`` times (the only ones with a keep probability under 1): at most pairs / t of
them, ~5k at 100M pairs and t = 20k, ~50 bytes each, ~0.3 MB per worker — not all 500k
entries (~30 MB as a Python dict). ``BeforeDistribution`` / ``AfterDistribution`` are global
combines whose accumulator is one int per entry hit (at most the metadata size: 4 MB for 500k
entries) plus the top 20.

The entries are read and checked when the pipeline is built (a bad metadata file fails before
anything runs) and reach the workers as one side input, a compressed blob (0.6 MB for the
bundled 146,580 WordNet entries; a few MB for 500k), once in the job graph, not once per DoFn,
so workers need no access to the file; each worker process builds its automaton once (~1 s,
~30 MB for the bundled list).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
from array import array
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import apache_beam as beam

from pipeline import faults, metrics
from pipeline.records import DropReason, Rejection, pair_of
from transforms.balance_match import (BUNDLED_NAME, Matcher, MetadataError, build_matcher, pack_entries,
                                      read_entries, unpack_entries)

SECTION = "balance"
HEAD_FRACTION = 0.01  # head share: the share of matches that goes to the top 1% of the entries hit
TOP_ENTRIES = 20  # named in stats.json and the report
CURVE_POINTS = 48  # rank/count points kept per distribution for the plot (log-spaced ranks)
_DRAW_PERSON = b"wit.balance.v1"  # blake2b personalisation: the draw differs from other hashes of the key


@dataclass(frozen=True)
class BalanceSpec:
    """What the stage needs: the packed entries and the caps (see ``balance_spec``)."""

    entries_blob: bytes
    digest: str  # sha256 of the blob: the per-process automaton cache key
    n_entries: int
    source: str
    t: int
    t_by_language: tuple  # ((lang, t), ...)
    languages: tuple  # identify captions among these; () = every pair is language ""
    before_fetch: bool

    def t_for(self, lang: str) -> int:
        return dict(self.t_by_language).get(lang, self.t)


def parse_t_by_language(items: Iterable[str], languages: Sequence[str]) -> tuple:
    """``("de=5000", ...)`` -> ``(("de", 5000), ...)``; a malformed item is a ValueError."""
    out = {}
    for item in items:
        lang, sep, value = str(item).partition("=")
        lang = lang.strip()
        if not sep or not lang or not value.strip().isascii() or not value.strip().isdigit():
            raise ValueError(f"balance.t_by_language: {item!r} is not lang=t (e.g. de=5000)")
        if lang not in languages:
            raise ValueError(f"balance.t_by_language: {lang!r} is not in caption.languages {list(languages)}"
                             " (captions are identified among those)")
        if int(value) < 1:
            raise ValueError(f"balance.t_by_language: t must be >= 1 in {item!r}")
        out[lang] = int(value)
    return tuple(sorted(out.items()))


def build_spec(metadata: str, t: int, t_by_language: Sequence[str], caption_languages: Sequence[str],
               before_fetch: bool) -> BalanceSpec:
    """The spec of the ``balance`` settings (pipeline/specs.py); reads and checks the metadata now."""
    if t < 1:
        raise ValueError(f"balance.t must be >= 1, got {t}")
    per_language = parse_t_by_language(t_by_language, tuple(caption_languages))
    entries = read_entries(metadata)
    blob = pack_entries(entries)
    return BalanceSpec(blob, hashlib.sha256(blob).hexdigest(), len(entries), metadata or BUNDLED_NAME, t,
                       per_language, tuple(caption_languages) if per_language else (), before_fetch)


_MATCHERS: dict = {}
_ENTRIES: dict = {}


def entries_for(spec: BalanceSpec, blob: Optional[bytes] = None) -> tuple:
    """The spec's entries (from ``blob``, the side input, when the spec was slimmed), once per process."""
    entries = _ENTRIES.get(spec.digest)
    if entries is None:
        entries = _ENTRIES[spec.digest] = unpack_entries(spec.entries_blob or blob)
    return entries


def matcher_for(spec: BalanceSpec, blob: Optional[bytes] = None) -> Matcher:
    """The spec's automaton, built once per worker process."""
    matcher = _MATCHERS.get(spec.digest)
    if matcher is None:
        matcher = _MATCHERS[spec.digest] = build_matcher(entries_for(spec, blob))
    return matcher


@functools.lru_cache(maxsize=4)
def _identifier(languages: tuple):
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)
    identifier.set_languages(list(languages))
    return identifier


def language_of(caption: str, languages: tuple) -> str:
    """The most likely of ``languages`` for ``caption`` ("" when balancing is language-blind)."""
    if not languages:
        return ""
    if len(languages) == 1:
        return languages[0]
    return str(_identifier(languages).classify(caption)[0])


def keep_probability(counts: Sequence[int], t: int) -> float:
    """``1 - prod(1 - min(1, t / c))`` over the pair's entry counts (sorted: the same float anywhere)."""
    miss = 1.0
    for count in sorted(counts):
        if count <= t:
            return 1.0
        miss *= 1.0 - t / count
    return 1.0 - miss


def draw(key: str) -> float:
    """A uniform number in [0, 1) that is a pure function of the pair's key."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8, person=_DRAW_PERSON).digest()
    return int.from_bytes(digest, "big") / 2.0 ** 64


def keep(key: str, counts: Sequence[int], t: int) -> bool:
    return draw(key) < keep_probability(counts, t)


def distribution(counts: Sequence[int]) -> dict:
    """Entries hit, matches, head share (top 1% of entries hit), entropy (bits), rank/count curve."""
    ordered = sorted((c for c in counts if c > 0), reverse=True)
    total = sum(ordered)
    if not total:
        return {"entries_hit": 0, "matches": 0, "head_entries": 0, "head_share": None, "entropy_bits": None,
                "curve": []}
    head = max(1, math.ceil(HEAD_FRACTION * len(ordered)))
    entropy = -sum(c / total * math.log2(c / total) for c in ordered)
    ranks = sorted({min(len(ordered), round(len(ordered) ** (i / (CURVE_POINTS - 1)))) for i in range(CURVE_POINTS)})
    return {"entries_hit": len(ordered), "matches": total, "head_entries": head,
            "head_share": round(sum(ordered[:head]) / total, 6), "entropy_bits": round(entropy, 6),
            "curve": [[r, ordered[r - 1]] for r in ranks]}


class EntryCountsFn(beam.CombineFn):
    """((lang, entry id), count) -> (counts of every entry hit, the top ``TOP_ENTRIES`` by count)."""

    def create_accumulator(self):
        return array("q"), []

    def add_input(self, acc, keyed):
        (lang, entry_id), count = keyed
        acc[0].append(count)
        acc[1].append((-count, lang, entry_id))
        if len(acc[1]) > 4 * TOP_ENTRIES:
            acc[1][:] = sorted(acc[1])[:TOP_ENTRIES]
        return acc

    def merge_accumulators(self, accumulators):
        counts, top = array("q"), []
        for part_counts, part_top in accumulators:
            counts.extend(part_counts)
            top.extend(part_top)
        return counts, sorted(top)[:TOP_ENTRIES]

    def extract_output(self, acc):
        return list(acc[0]), sorted(acc[1])[:TOP_ENTRIES]


def entry_name(entries: Sequence[str], lang: str, entry_id: int) -> str:
    return f"{lang}:{entries[entry_id]}" if lang else entries[entry_id]


def _described(tagged, spec: BalanceSpec, blob: bytes) -> tuple:
    which, summary = tagged
    entries = entries_for(spec, blob)
    if which == "top_kept":  # the kept matches of the entries most matched before (the report's bars)
        named = [[entry_name(entries, lang, e), n] for (lang, e), n in summary]
        return SECTION, which, sorted(named, key=lambda kv: (-kv[1], kv[0]))
    counts, top = summary
    doc = distribution(counts)
    doc["top"] = [[entry_name(entries, lang, e), -neg] for neg, lang, e in top]
    return SECTION, which, doc


def settings_values(spec: BalanceSpec) -> list:
    return [(SECTION, "metadata", spec.source), (SECTION, "metadata_entries", spec.n_entries),
            (SECTION, "t", spec.t), (SECTION, "t_by_language", dict(spec.t_by_language) or None),
            (SECTION, "placement", "before_fetch" if spec.before_fetch else "after_fetch")]


def _internal(record, exc: Exception, where: str):
    pair = pair_of(record)
    detail = faults.internal_error(DropReason.BALANCE_INTERNAL, exc, f"{where} on {pair.key}")
    metrics.inc_reason(DropReason.BALANCE_INTERNAL)
    return beam.pvalue.TaggedOutput("rejected", Rejection.of(pair, DropReason.BALANCE_INTERNAL, detail))


class _MatchFn(beam.DoFn):
    """record -> (record, lang, entry ids); no entry: balance.no_match."""

    def __init__(self, spec: BalanceSpec):
        self.spec = spec

    def process(self, record, blob: bytes):
        try:
            caption = pair_of(record).caption or ""
            ids = matcher_for(self.spec, blob).match(caption)
            lang = language_of(caption, self.spec.languages) if ids else ""
        except Exception as exc:  # one odd caption costs that pair, not the run
            yield _internal(record, exc, "MatchEntries")
            return
        if not ids:
            metrics.inc_reason(DropReason.BALANCE_NO_MATCH)
            yield beam.pvalue.TaggedOutput("rejected", Rejection.of(
                pair_of(record), DropReason.BALANCE_NO_MATCH, "no metadata entry in the caption"))
            return
        yield record, lang, ids


def downsampled_detail(entries: Sequence[str], lang: str, ids: Sequence[int], counts: Sequence[int],
                       t: int, p: float) -> str:
    top = max(range(len(ids)), key=lambda i: (counts[i], -ids[i]))
    return (f"p_keep={p:.4g}: all {len(ids)} entries over t={t}; most common "
            f"{entry_name(entries, lang, ids[top])!r} ({counts[top]} matches)")


class _DecideFn(beam.DoFn):
    """(record, lang, ids) -> the record (kept), or balance.downsampled; kept entries on a side output."""

    def __init__(self, spec: BalanceSpec):
        self.spec = spec

    def process(self, matched, head: dict, blob: bytes):
        record, lang, ids = matched
        try:
            t = self.spec.t_for(lang)
            counts = [head.get((lang, e)) for e in ids]
            verdict = None
            if None not in counts:  # an entry at or under t keeps the pair (its probability is 1)
                p = keep_probability(counts, t)
                if not draw(pair_of(record).key) < p:
                    verdict = downsampled_detail(entries_for(self.spec, blob), lang, ids, counts, t, p)
        except Exception as exc:  # one odd record costs that pair, not the run
            yield _internal(record, exc, "DecideKeep")
            return
        if verdict is not None:
            metrics.inc_reason(DropReason.BALANCE_DOWNSAMPLED)
            yield beam.pvalue.TaggedOutput("rejected", Rejection.of(
                pair_of(record), DropReason.BALANCE_DOWNSAMPLED, verdict))
            return
        for e in ids:
            yield beam.pvalue.TaggedOutput("kept_entries", (lang, e))
        yield record


def _entry_keys(matched):
    _record, lang, ids = matched
    return [(lang, e) for e in ids]


class BalanceByMetadata(beam.PTransform):
    """records -> (kept, rejected, stats values): MetaCLIP balancing over metadata entries."""

    def __init__(self, spec: BalanceSpec):
        super().__init__()
        self.spec = spec

    def expand(self, records):
        # The entries reach the workers once, as a side input; the DoFns carry a spec without them.
        blob = beam.pvalue.AsSingleton(records.pipeline | "MetadataEntries" >> beam.Create([self.spec.entries_blob]))
        spec = dataclasses.replace(self.spec, entries_blob=b"")
        matched = (records | "MatchEntries" >> beam.ParDo(_MatchFn(spec), blob)
                   .with_outputs("rejected", main="matched"))
        # Largest key at 100M pairs: the most frequent entry (module docstring); lifted, one partial per bundle.
        counts = (matched.matched | "EntriesOf" >> beam.FlatMap(_entry_keys)
                  | "CountPerEntry" >> beam.combiners.Count.PerElement())
        caps = (spec.t, dict(spec.t_by_language))
        head = counts | "OverT" >> beam.Filter(lambda kv, c: kv[1] > c[1].get(kv[0][0], c[0]), caps)
        decided = (matched.matched
                   | "DecideKeep" >> beam.ParDo(_DecideFn(spec), beam.pvalue.AsDict(head), blob)
                   .with_outputs("rejected", "kept_entries", main="kept"))
        after = decided.kept_entries | "CountKeptPerEntry" >> beam.combiners.Count.PerElement()
        before = counts | "BeforeDistribution" >> beam.CombineGlobally(EntryCountsFn())
        top_keys = before | "TopBeforeKeys" >> beam.Map(lambda s: frozenset((lang, e) for _n, lang, e in s[1]))
        summaries = (
            before | "TagBefore" >> beam.Map(lambda s: ("before", s)),
            after | "AfterDistribution" >> beam.CombineGlobally(EntryCountsFn())
            | "TagAfter" >> beam.Map(lambda s: ("after", s)),
            after | "KeptOfTop" >> beam.Filter(lambda kv, keys: kv[0] in keys, beam.pvalue.AsSingleton(top_keys))
            | "KeptOfTopList" >> beam.combiners.ToList() | "TagKeptOfTop" >> beam.Map(lambda s: ("top_kept", s)),
        ) | "AllDistributions" >> beam.Flatten()
        stats = (summaries | "DescribeDistributions" >> beam.Map(_described, spec, blob),
                 records.pipeline | "BalanceSettings" >> beam.Create(settings_values(spec))
                 ) | "AllBalanceStats" >> beam.Flatten()
        rejected = (matched.rejected, decided.rejected) | "AllBalanceRejects" >> beam.Flatten()
        return decided.kept, rejected, stats


__all__ = ["BalanceByMetadata", "BalanceSpec", "MetadataError", "build_spec", "distribution", "draw",
           "keep", "keep_probability", "language_of", "matcher_for", "parse_t_by_language"]
