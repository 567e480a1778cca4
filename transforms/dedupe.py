"""Dedupe stages: one pair per image URL, per (URL, caption), per exact image, per near-duplicate group.

Input: ``AltPair`` (DedupeUrls, DedupeUrlCaptions) or ``ResizedImage`` /
``ScoredImage`` (DedupeImages, DedupeNear). Output: ``(kept, rejected)``; the
dropped duplicates get ``dedupe.url``, ``dedupe.url_caption``,
``dedupe.image_exact`` or ``dedupe.image_near`` with the surviving key in ``detail``.

Which member of a group survives is deterministic, so reruns agree:
- URLs (normalised, fragment dropped): the pair from the smallest page URL,
  then the earliest ``<img>`` on that page. (URL, caption) pairs: the same order.
- Image bytes (sha256 of the download): the pair with the smallest image URL,
  then page URL and position.
- Near-duplicates: a survivor policy handed in by build.py (filters/dedupe_policy.py).

DedupeNear at scale (only light tuples move until the last step; no key holds a group):
1. records with the same (pHash, colour signature) are linked to the smallest key
   (a CombinePerKey for the smallest key and the count, then a salted join:
   transforms/hot_join.py), and that key alone goes on;
2. each distinct signature's hash is keyed by its LSH bands (transforms/lsh.py: 90 keys
   of ~21 bits; gathered per bundle into uint64 arrays per (table, value prefix), so the
   shuffle moves arrays of hashes, 8 bytes per image and table, not 90 elements per
   image), and each band bucket emits the pairs of hashes within the Hamming threshold;
   those few pairs meet their signatures (key, colour) in a join on the hash, where the
   colour guard is applied (and signatures sharing one hash are compared): candidate
   edges, linear in the data; with a ``caption_veto`` (``dedupe.near_caption_veto``), an LSH
   edge whose two captions tell the images apart (filters/dedupe_policy.captions_tell_apart:
   "... answer no" / "... answer yes") is dropped: each edge gets its ends' captions in two
   salted joins (transforms/hot_join.py, one per end; the count of edges per endpoint from a
   lifted combine), so an image near 100k others is no hot key. The same-signature edges of
   step 1 (identical pHash and colour) are never vetoed;
3. connected components of the edges: ``dedupe.near_cc_rounds`` large-star/small-star
   rounds, then an exact one-key finish of what they left (transforms/components.py);
4. each component's survivor (the smallest rank: a CombinePerKey with its size) reaches
   the members through a salted join, so a giant group is spread over many keys;
5. a CoGroupByKey on the sample key routes every record (the only shuffle of images; each
   record packed into one bytes, transforms/output_files.py, as in the exact layers' join).

Largest key at 100M pairs: DedupeUrls, DedupeUrlCaptions, DedupeImages: ``Survivors``, a
combine of (order tuple, sample key) with a count, lifted (one partial per key per worker
bundle, so the most shared URL, a logo on millions of pages, sends one tuple per bundle);
``SurvivorOfMembers``: salted, ~10,000 (group key, sample key) tuples whatever the largest
group; ``JoinSurvivor``: one sample key (its record and its survivor's key), the only
shuffle of records. DedupeNear: SignatureStats, SurvivorAndSize,
CountImages: combines, lifted (partial sums per worker); SameSignature and PickSurvivors:
salted, ~10,000 values; GroupBands: one (table, prefix) of 64 per table, ~1.6M hashes
(uint64 arrays, ~13 MB); JoinHashes: one hash (its signatures, ~1, and its candidate pairs, a
few); GroupEnds: one candidate pair (two values); with the caption veto, EdgeDegrees: a
combine, lifted (partial counts per worker); JoinEndInfo: one image key (its caption and its edge
count, <= 2 values); CaptionOfA, CaptionOfB: salted, ~10,000 edges whatever an endpoint's
degree (a blank image near 100k others is ~10 salts); the components: see transforms/components.py (~10,000 edges;
the residual finisher: ~0 pairs once converged); JoinRanks, JoinDrops: one sample key
(one record and its drop).
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Optional

import apache_beam as beam
import numpy as np

from pipeline import metrics
from pipeline.records import AltPair, DropReason, Rejection, ResizedImage, ScoredImage, pair_of
from transforms.crawl import normalize_url
from transforms.components import DEFAULT_ROUNDS, ConnectedComponents, MinAndCount
from transforms.hot_join import HOT_KEY_VALUES, SaltedJoin
from transforms.output_files import pack, unpack
from transforms.lsh import LshSpec, band_positions, band_values, bucket_candidates, near_distance


def url_order(pair: AltPair) -> tuple:
    return (pair.page_url, pair.position, pair.key)


def image_order(image: ResizedImage) -> tuple:
    pair = image.pair
    return (pair.image_url, pair.page_url, pair.position, pair.key)


def split_group(records: list, order: Callable, reason: DropReason):
    """(survivor, [Rejection ...]) for one group of duplicates."""
    ranked = sorted(records, key=order)
    survivor = ranked[0]
    detail = f"duplicate of {pair_of(survivor).key}"
    return survivor, [Rejection.of(pair_of(r), reason, detail) for r in ranked[1:]]


def _keyed(record, key_fn: Callable):
    """((group key, sample key), record): the key is computed once (normalize_url is most of
    this stage's CPU), and the record's shuffle key needs nothing computed elsewhere."""
    return (key_fn(record), pair_of(record).key), record


def _survivor_entry(keyed, order: Callable):
    """(group key, (order tuple, sample key)): the light value the survivor combine sees."""
    (group, sample), record = keyed
    return group, (order(record), sample)


def _packed_value(keyed):
    """(key, record packed into one bytes): a join holding every record holds one object per record,
    not its decoded fields (~1 KB instead of ~2 KB a ResizedImage; transforms/output_files.py)."""
    key, record = keyed
    return key, pack(record)


def _member(keyed):
    (group, sample), _record = keyed
    return group, sample


def _count_of(stats):
    return stats[1]


def _survivor_of_members(group, stats, samples, _salt):
    """((group key, sample key), survivor's sample key) for each member in one salted group."""
    (_order, survivor), _size = stats
    for sample in set(samples):  # a pair present twice is one member here, two records below
        yield (group, sample), survivor


class _RouteFn(beam.DoFn):
    """(group key, sample key) with its record(s) and its group's survivor -> kept or Rejection.

    Only the survivor's sample key keeps a record. Several records there are the same pair
    more than once: the smallest order (then repr, so reruns agree) is kept, as
    ``split_group`` would (order tuples end with the sample key, so other ties cannot occur).
    """

    def __init__(self, order: Callable, reason: DropReason):
        self.order, self.reason = order, reason

    def process(self, key_and_joined):
        (_group, sample), joined = key_and_joined
        survivor = next(iter(joined["survivor"]))
        records = [unpack(r) for r in joined["record"]]
        if sample == survivor:
            if len(records) > 1:
                records.sort(key=lambda r: (self.order(r), repr(r)))
            yield records[0]
            records = records[1:]
        detail = f"duplicate of {survivor}"
        for record in records:
            metrics.inc_reason(self.reason)
            yield beam.pvalue.TaggedOutput("rejected", Rejection.of(pair_of(record), self.reason, detail))


class _DedupeBy(beam.PTransform):
    """Records -> (the smallest ``order`` per ``key_fn``, Rejection ``reason`` for the others).

    No key holds a group, and records cross one shuffle:
    - ``Survivors``: a CombinePerKey of (order tuple, sample key) with a count, lifted
      (partial minima per bundle: a URL on a million pages sends one tuple per bundle);
    - ``SurvivorOfMembers``: each (group key, sample key) tuple meets its group's survivor
      in a salted join (transforms/hot_join.py: a group of more than ``per_key`` members
      is spread over several keys); light tuples only, so the join's side input (the hot
      keys) breaking fusion materialises tuples, not records;
    - ``JoinSurvivor``: a CoGroupByKey on (group key, sample key) brings each record its
      survivor: one pair per key, the only shuffle of records.
    The survivor is the one ``split_group`` picks: the smallest order tuple, which ends with
    the sample key, so it is unique.
    """

    def __init__(self, key_fn: Callable, order: Callable, reason: DropReason, per_key: int = HOT_KEY_VALUES):
        super().__init__()
        self.key_fn, self.order, self.reason, self.per_key = key_fn, order, reason, per_key

    def expand(self, records):
        keyed = records | "KeyForDedupe" >> beam.Map(_keyed, self.key_fn)
        survivors = (keyed
                     | "SurvivorEntry" >> beam.Map(_survivor_entry, self.order)
                     | "Survivors" >> beam.CombinePerKey(MinAndCount()))
        members = keyed | "Members" >> beam.Map(_member)
        survivor_of = ({"many": members, "one": survivors}
                       | "SurvivorOfMembers" >> SaltedJoin(_survivor_of_members, _count_of, per_key=self.per_key))
        packed = keyed | "PackRecords" >> beam.Map(_packed_value)
        out = ({"record": packed, "survivor": survivor_of} | "JoinSurvivor" >> beam.CoGroupByKey()
               | "Route" >> beam.ParDo(_RouteFn(self.order, self.reason)).with_outputs("rejected", main="kept"))
        return out.kept, out.rejected


def _url_key(pair: AltPair) -> str:
    return normalize_url(pair.image_url)


def _sha_key(image: ResizedImage) -> str:
    return image.sha256


class DedupeUrls(_DedupeBy):
    """AltPair -> (one pair per normalised image URL, Rejection dedupe.url)."""

    def __init__(self, per_key: int = HOT_KEY_VALUES):
        super().__init__(_url_key, url_order, DropReason.DEDUPE_URL, per_key)


def _url_caption_key(pair: AltPair) -> str:
    return f"{normalize_url(pair.image_url)}\n{pair.caption}"


class DedupeImages(_DedupeBy):
    """ResizedImage -> (one per sha256 of the downloaded bytes, Rejection dedupe.image_exact)."""

    def __init__(self, per_key: int = HOT_KEY_VALUES):
        super().__init__(_sha_key, image_order, DropReason.DEDUPE_IMAGE_EXACT, per_key)


class DedupeUrlCaptions(_DedupeBy):
    """AltPair -> (one pair per (normalised image URL, caption), Rejection dedupe.url_caption).

    With ``dedupe.url: true`` every URL is already unique; this layer matters when a
    dataset keeps several captions per image (``url: false``) but not the same one twice.
    """

    def __init__(self, per_key: int = HOT_KEY_VALUES):
        super().__init__(_url_caption_key, url_order, DropReason.DEDUPE_URL_CAPTION, per_key)


# ---- near-duplicates -------------------------------------------------------------


def _image_of(record) -> ResizedImage:
    return record.image if isinstance(record, ScoredImage) else record


def _near_meta(record, rank: Callable):
    """(key, hash, colour, rank) of a hashed record; nothing for an unhashed one."""
    image = _image_of(record)
    if image.phash:
        yield image.pair.key, int(image.phash, 16), image.colour_sig, rank(record)


def _signature_key(meta):
    key, value, colour, _rank = meta
    return (value, colour), key


def _signature_rep(signature_and_stats):
    (value, colour), (smallest, _count) = signature_and_stats
    return smallest, value, colour


def _same_signature_edges(_signature, stats, keys, _salt):
    """Identical (hash, colour): edges to the smallest key, which alone goes on to the bands."""
    smallest = stats[0]
    for other in sorted(set(keys)):
        if other != smallest:
            yield smallest, other


def prefix_bits(count: int, per_group: int = 4096, most: int = 6) -> int:
    """Band-value prefix bits for ``count`` images: about ``per_group`` entries per (table, prefix)
    group, at most 2^``most`` groups per table. Each group costs a shuffle element and a
    verification call whatever its size, so small runs use few groups (2,000 images: one
    per table instead of 64) and large ones spread the work."""
    groups = max(1, -(-count // per_group))
    return min(most, (groups - 1).bit_length())


class _BandEntriesFn(beam.DoFn):
    """Signatures -> ((table, band-value prefix), uint64 array of that group's hashes).

    90 band keys per image would be 90 shuffle elements per image: the hashes are
    gathered per bundle into one numpy array per (table, prefix), at most
    tables x 2^prefix_bits elements per flush. An entry is the hash alone (8 bytes per
    image and table; VerifyBuckets recomputes the band value from it, and the colour
    and the key are joined back for the few pairs that pass): the FnApiRunner holds a
    GroupByKey's whole input, and with the keys (Python str) and colours in every part
    this stage was 9.2 KB per image (bench/memory.py). The prefix length comes from the
    number of images (a side input), so every bundle cuts the same way. A band bucket
    (one band value) is never split across prefixes, so each group holds whole buckets.
    """

    FLUSH_EVERY = 50000

    def __init__(self, spec: LshSpec):
        self.spec = spec
        self.bits = 0

    def start_bundle(self):
        self.buffer = []

    def process(self, rep, count: int):
        self.bits = prefix_bits(count)
        self.buffer.append(rep[1])
        if len(self.buffer) >= self.FLUSH_EVERY:
            yield from self._flush()

    def finish_bundle(self):
        from apache_beam.transforms.window import GlobalWindow
        from apache_beam.utils.windowed_value import WindowedValue

        for element in self._flush():
            yield WindowedValue(element, GlobalWindow().max_timestamp(), [GlobalWindow()])

    def _flush(self):
        if not self.buffer:
            return
        hashes = np.unique(np.array(self.buffer, dtype=np.uint64))  # one entry per hash (colours differ)
        self.buffer = []
        values = band_values(hashes, self.spec)
        shift = max(0, max(len(p) for p in band_positions(self.spec)) - self.bits)
        for t in range(self.spec.tables):
            prefix = values[:, t] >> shift
            order = np.argsort(prefix, kind="stable")
            cuts = np.nonzero(np.diff(prefix[order]))[0] + 1
            for rows in np.split(order, cuts):
                yield (t, int(prefix[rows[0]])), hashes[rows]


def _bucket_pairs(group_and_parts, spec: LshSpec):
    """(hash a, hash b), a < b: distinct hashes sharing a band bucket of one (table, prefix) group and
    within the Hamming threshold (the colour guard follows in VerifyPairs)."""
    (table, _prefix), parts = group_and_parts
    yield from bucket_candidates(np.concatenate(list(parts)), spec, table)


def _rep_by_hash(rep):
    smallest, value, colour = rep
    return value, (smallest, colour)


def _candidate_ends(pair):
    yield pair[0], pair
    yield pair[1], pair


def _end_signatures(hash_and_joined):
    """One hash's signatures (key, colour) to each of its candidate pairs; to (h, h) when it has several."""
    value, joined = hash_and_joined
    signatures = tuple(sorted(set(joined["signature"])))
    if len(signatures) > 1:  # the same pHash in other colours: compared with each other in VerifyPairs
        yield (value, value), (value, signatures)
    for pair in sorted(set(joined["pair"])):
        yield pair, (value, signatures)


def _verified_edges(pair_and_ends, spec: LshSpec):
    """(key a < key b, distance) of the near-duplicate signatures of one candidate pair of hashes."""
    (lo, hi), ends = pair_and_ends
    by_hash = dict(ends)
    if lo == hi:
        signatures = by_hash[lo]
        combos = ((a, b) for i, a in enumerate(signatures) for b in signatures[i + 1:])
    else:
        combos = ((a, b) for a in by_hash.get(lo, ()) for b in by_hash.get(hi, ()))
    for (key_a, colour_a), (key_b, colour_b) in combos:
        distance = near_distance(lo, colour_a, hi, colour_b, spec)
        if distance is not None:
            yield (key_a, key_b, distance) if key_a < key_b else (key_b, key_a, distance)


def _caption_entry(record):
    """(key, caption) of a hashed record (the only ones with edges); nothing for an unhashed one."""
    image = _image_of(record)
    if image.phash:
        yield image.pair.key, image.pair.caption


def _edge_ends(edge):
    key_a, key_b, _distance = edge
    yield key_a, 1
    yield key_b, 1


def _end_info(key_and_joined):
    """(key, (caption, edge count)) of an endpoint: one caption per key (the smallest, should a
    record come twice), "" (which tells nothing apart) for a key without one."""
    key, joined = key_and_joined
    degrees = list(joined["degree"])
    if degrees:
        captions = sorted(joined["caption"])
        yield key, (captions[0] if captions else "", degrees[0])


def _edge_by_a(edge):
    return edge[0], edge


def _end_count(info):
    return info[1]


def _caption_of_a(_key, info, edges, _salt):
    """(key b, (key a, key b, distance, caption a)) for one salted group of key a's edges."""
    caption = info[0] if info else ""
    for key_a, key_b, distance in edges:
        yield key_b, (key_a, key_b, distance, caption)


def _vetoed(veto: Callable[[str, str], bool], caption_a: str, caption_b: str) -> bool:
    """Whether the veto drops an edge (the guard tests/mutation/guards_near.py switches off)."""
    return veto(caption_a, caption_b)


def _caption_of_b(_key, info, edges, _salt, veto: Callable[[str, str], bool]):
    """(key a, key b, distance) of one salted group of key b's edges whose captions do not tell apart."""
    caption_b = info[0] if info else ""
    for key_a, key_b, distance, caption_a in edges:
        if _vetoed(veto, caption_a, caption_b):
            metrics.inc(metrics.Counter.NEAR_CAPTION_VETOED)
        else:
            yield key_a, key_b, distance


class VetoEdges(beam.PTransform):
    """LSH edges (key a, key b, distance) -> those whose two images' captions ``veto`` does not tell apart.

    ``records``: the records the edges' keys come from (their ``pair.caption``). Counts the dropped
    edges (``near_caption_vetoed``). No key holds an endpoint's edges: the caption of each end
    reaches the edges through a salted join keyed by that end, where the number of salts comes
    from the endpoint's edge count (a lifted Count.PerKey).
    """

    def __init__(self, records, veto: Callable[[str, str], bool]):
        super().__init__()
        self.records, self.veto = records, veto

    def expand(self, edges):
        captions = self.records | "CaptionOfKey" >> beam.FlatMap(_caption_entry)
        degrees = edges | "EdgeEnds" >> beam.FlatMap(_edge_ends) | "EdgeDegrees" >> beam.combiners.Count.PerKey()
        info = ({"caption": captions, "degree": degrees} | "JoinEndInfo" >> beam.CoGroupByKey()
                | "EndInfo" >> beam.FlatMap(_end_info))
        with_a = ({"many": edges, "one": info}
                  | "CaptionOfA" >> SaltedJoin(_caption_of_a, _end_count, _edge_by_a))
        return ({"many": with_a, "one": info}
                | "CaptionOfB" >> SaltedJoin(partial(_caption_of_b, veto=self.veto), _end_count))


def _grouped_rank(key_and_joined):
    """(root, (rank, key)) of every member of a component (rank tuples end with the key: unique)."""
    key, joined = key_and_joined
    for root in joined["root"]:
        for rank in joined["rank"]:
            yield root, (rank, key)


def _member_key(root_rank_key):
    root, (_rank, key) = root_rank_key
    return root, key


def _survivor_drops(_root, stats, keys, _salt):
    """(loser key, (survivor key, group size)) for the non-survivors among one salted group of members."""
    (_rank, survivor), size = stats
    for key in sorted(set(keys)):
        if key != survivor:
            yield key, (survivor, size)


class _RouteNearFn(beam.DoFn):
    def process(self, key_and_joined):
        _key, joined = key_and_joined
        drops = list(joined["drop"])
        for record in map(unpack, joined["record"]):
            if not drops:
                yield record
                continue
            survivor, size = drops[0]
            metrics.inc_reason(DropReason.DEDUPE_IMAGE_NEAR)
            yield beam.pvalue.TaggedOutput("rejected", Rejection.of(
                pair_of(record), DropReason.DEDUPE_IMAGE_NEAR, f"duplicate of {survivor} (group of {size})"))


class DedupeNear(beam.PTransform):
    """ResizedImage or ScoredImage -> (one per near-duplicate group, Rejection dedupe.image_near).

    ``rank``: record -> tuple, smallest survives (filters/dedupe_policy.SurvivorPolicy).
    ``cc_rounds``: large-star/small-star rounds (``dedupe.near_cc_rounds``); any count gives
    the same groups, fewer leave more for the one-key finisher. Records without a pHash
    pass through untouched.
    ``caption_veto``: (caption a, caption b) -> True to drop an LSH edge (build.py passes
    filters/dedupe_policy.captions_tell_apart with ``dedupe.near_caption_veto``; None: no veto).
    It applies to the LSH edges only: records of identical pHash and colour signature are
    linked whatever their captions, and an LSH edge joins two signatures' smallest keys, so
    it is their captions that are compared. A vetoed pair may still meet through a third image.
    """

    def __init__(self, spec: LshSpec, rank: Callable, cc_rounds: int = DEFAULT_ROUNDS,
                 caption_veto: Optional[Callable[[str, str], bool]] = None):
        super().__init__()
        self.spec, self.rank, self.cc_rounds, self.caption_veto = spec, rank, cc_rounds, caption_veto

    def expand(self, records):
        meta = records | "NearMeta" >> beam.FlatMap(_near_meta, self.rank)
        signatures = meta | "KeyBySignature" >> beam.Map(_signature_key)
        signature_stats = signatures | "SignatureStats" >> beam.CombinePerKey(MinAndCount())
        same_edges = ({"many": signatures, "one": signature_stats}
                      | "SameSignature" >> SaltedJoin(_same_signature_edges, _count_of))
        reps = signature_stats | "SignatureReps" >> beam.Map(_signature_rep)
        count = reps | "CountImages" >> beam.combiners.Count.Globally()
        candidates = (reps
                      | "BandKeys" >> beam.ParDo(_BandEntriesFn(self.spec), count=beam.pvalue.AsSingleton(count))
                      | "GroupBands" >> beam.GroupByKey()
                      | "VerifyBuckets" >> beam.FlatMap(_bucket_pairs, self.spec))
        lsh_edges = ({"signature": reps | "RepByHash" >> beam.Map(_rep_by_hash),
                      "pair": candidates | "CandidateEnds" >> beam.FlatMap(_candidate_ends)}
                     | "JoinHashes" >> beam.CoGroupByKey()
                     | "EndSignatures" >> beam.FlatMap(_end_signatures)
                     | "GroupEnds" >> beam.GroupByKey()
                     | "VerifyPairs" >> beam.FlatMap(_verified_edges, self.spec))
        if self.caption_veto is not None:
            lsh_edges = lsh_edges | "VetoByCaption" >> VetoEdges(records, self.caption_veto)
        roots = ((same_edges, lsh_edges) | "AllEdges" >> beam.Flatten()
                 | "Components" >> ConnectedComponents(self.cc_rounds))
        ranks = meta | "KeyRank" >> beam.Map(lambda m: (m[0], m[3]))
        members = ({"root": roots, "rank": ranks} | "JoinRanks" >> beam.CoGroupByKey()
                   | "ByGroup" >> beam.FlatMap(_grouped_rank))
        groups = members | "SurvivorAndSize" >> beam.CombinePerKey(MinAndCount())
        drops = ({"many": members, "one": groups}
                 | "PickSurvivors" >> SaltedJoin(_survivor_drops, _count_of, _member_key))
        keyed = records | "KeyRecords" >> beam.Map(lambda r: (_image_of(r).pair.key, pack(r)))
        out = ({"record": keyed, "drop": drops} | "JoinDrops" >> beam.CoGroupByKey()
               | "Route" >> beam.ParDo(_RouteNearFn()).with_outputs("rejected", main="kept"))
        return out.kept, out.rejected
