"""transforms.balance and transforms.balance_match: MetaCLIP balancing over metadata entries."""

import gzip
import json
import math
import random
from collections import Counter
from types import SimpleNamespace

import apache_beam as beam
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pipeline.records import AltPair, DropReason, ResizedImage, make_key, pair_of
from tests.conftest import counter as _counter, local_test_pipeline
from transforms.balance import (BalanceByMetadata, EntryCountsFn, build_spec, distribution, draw, keep,
                                keep_probability, language_of, parse_t_by_language)
from transforms.balance_match import (BUNDLED_METADATA, MetadataError, build_matcher, naive_match, normalise,
                                      parse_entries, read_entries)


def balance_spec(cfg, caption_languages=()):
    return build_spec(cfg.metadata, cfg.t, cfg.t_by_language, caption_languages, cfg.before_fetch)


def _cfg(metadata="", t=20000, t_by_language=(), before_fetch=True):
    return SimpleNamespace(metadata=metadata, t=t, t_by_language=t_by_language, before_fetch=before_fetch)


def _pair(i: int, caption, page: str = "http://pool.test/p") -> AltPair:
    return AltPair(key=make_key(page, i), page_url=page, image_url=f"http://cdn.test/{i}.jpg", caption=caption)


def _metadata(tmp_path, entries, name="meta.txt") -> str:
    path = tmp_path / name
    path.write_text("\n".join(entries) + "\n", encoding="utf-8")
    return str(path)


# --- matching: whole words or phrases, case-folded ---------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("A Photo of a DOG!", "a photo of a dog"),
    ("  hot-dog\tstand\n", "hot dog stand"),
    ("dog's_bowl", "dog s bowl"),
    ("Straße CAFÉ", "strasse café"),
    ("ＦＵＬＬ width", "full width"),  # NFKC
    ("हिन्दी भाषा", "हिन्दी भाषा"),  # vowel signs (combining marks) stay inside the word
    ("...", ""),
])
def test_normalise(text, expected):
    assert normalise(text) == expected


@pytest.mark.parametrize("caption, expected", [
    ("A golden retriever in the park", ["golden", "golden retriever", "park", "retriever"]),
    ("GOLDEN-Retriever!", ["golden", "golden retriever", "retriever"]),
    ("dogs and hotdogs", []),  # whole words only: no "dog" inside "dogs"
    ("the dog's bowl", ["dog"]),
    ("new york city at night", ["new york", "new york city", "york city"]),  # overlapping phrases all count
    ("park park park", ["park"]),  # once per caption
    ("", []),
])
def test_match_whole_words_and_phrases(caption, expected):
    entries = ("dog", "golden", "golden retriever", "new york", "new york city", "park", "retriever", "york city")
    matcher = build_matcher(entries)
    assert [entries[i] for i in matcher.match(caption)] == expected


_WORDS = st.sampled_from(["dog", "Dog", "cat", "hot", "hot-dog", "new", "york", "ß", "ss", "é", "e\u0301",
                          "a", "城市", "x1"])
_SEPS = st.sampled_from([" ", "  ", "-", "!", ", ", "\n", "_", "'", "\u00a0", ""])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_WORDS, _SEPS), max_size=12), st.lists(st.lists(_WORDS, min_size=1, max_size=3),
                                                                   min_size=1, max_size=8))
def test_fuzz_automaton_matches_metaclip_reference_loop(words, raw_entries):
    text = "".join(w + s for w, s in words)
    entries = tuple(sorted({e for e in (normalise(" ".join(r)) for r in raw_entries) if e}))
    if not entries:
        return
    assert build_matcher(entries).match(text) == naive_match(entries, text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_arbitrary_text_never_raises_and_is_a_fixed_point(text):
    once = normalise(text)
    assert normalise(once) == once
    assert "  " not in once and once == once.strip()
    entries = tuple(sorted({normalise(w) for w in text.split()} - {""})) or ("zz",)
    assert build_matcher(entries).match(text) == naive_match(entries, text)


# --- metadata files ------------------------------------------------------------------------------

def test_metadata_text_json_and_gzip(tmp_path):
    assert read_entries(_metadata(tmp_path, ["Dog", "", "golden  retriever", "dog"])) == ("dog", "golden retriever")
    (tmp_path / "m.json").write_text(json.dumps(["Cat", "hot-dog"]), encoding="utf-8")
    assert read_entries(str(tmp_path / "m.json")) == ("cat", "hot dog")
    (tmp_path / "m.txt.gz").write_bytes(gzip.compress(b"bird\nfish\n"))
    assert read_entries(str(tmp_path / "m.txt.gz")) == ("bird", "fish")


@pytest.mark.parametrize("data", [b"", b"\n...\n", b"[1, 2]", b'{"a": 1}', b"[not json", b"\xff\xfe\x00bad"])
def test_bad_metadata_is_an_error_before_the_run(data):
    with pytest.raises(MetadataError):
        parse_entries(data, "m")


def test_missing_metadata_file_is_an_error(tmp_path):
    with pytest.raises(MetadataError):
        read_entries(str(tmp_path / "nope.txt"))


def test_bundled_metadata_is_wordnet_and_small():
    assert BUNDLED_METADATA.stat().st_size < 3_000_000
    entries = read_entries("")
    assert len(entries) > 100_000 and "golden retriever" in entries and "dog" in entries
    assert list(entries) == sorted(set(entries)) and all(len(e) > 1 for e in entries)
    assert (BUNDLED_METADATA.parent / "LICENSE-WordNet").exists()


# --- keep decision ---------------------------------------------------------------------------------

@pytest.mark.parametrize("counts, t, expected", [
    ([10], 20, 1.0), ([20], 20, 1.0), ([40], 20, 0.5), ([40, 40], 20, 0.75), ([40, 10], 20, 1.0),
    ([100, 50, 200], 10, 1 - 0.9 * 0.8 * 0.95),
])
def test_keep_probability_is_metaclip_formula(counts, t, expected):
    assert keep_probability(counts, t) == pytest.approx(expected)


def test_draw_is_a_uniform_function_of_the_key():
    keys = [make_key("http://x.test/", i) for i in range(20000)]
    draws = [draw(k) for k in keys]
    assert draws == [draw(k) for k in keys]
    assert all(0.0 <= d < 1.0 for d in draws)
    assert abs(sum(draws) / len(draws) - 0.5) < 0.01
    assert abs(sum(d < 0.1 for d in draws) / len(draws) - 0.1) < 0.01


def _skewed_pool(n_entries: int, top: int, t_offset: int = 0):
    """Entry i appears in ``top // (i + 1)`` captions (Zipf), alone with words that are no entry."""
    entries = [f"entry{i:03d}" for i in range(n_entries)]
    pool, i = [], t_offset
    for rank, entry in enumerate(entries):
        for _ in range(top // (rank + 1)):
            pool.append(_pair(i, f"Photo of {entry.upper()}, filler{i % 7} words"))
            i += 1
    return entries, pool


def _assert_kept_near_min(kept: Counter, counts: Counter, t: int):
    for entry, n in counts.items():
        expected = min(n, t)
        sigma = math.sqrt(t * (1 - t / n)) if n > t else 0.0
        assert abs(kept[entry] - expected) <= 4 * sigma + 1e-9, (entry, n, kept[entry], expected)


def test_synthetic_skew_keeps_about_min_count_t_per_entry():
    entries, pool = _skewed_pool(60, 20000)
    matcher, t = build_matcher(entries), 500
    matched = [(p, matcher.match(p.caption)) for p in pool]
    assert all(len(ids) == 1 for _, ids in matched)
    counts = Counter(e for _, ids in matched for e in ids)
    assert counts[0] == 20000 and counts[59] == 20000 // 60
    kept = Counter(e for p, ids in matched if keep(p.key, [counts[e] for e in ids], t) for e in ids)
    _assert_kept_near_min(kept, counts, t)
    before, after = distribution(list(counts.values())), distribution(list(kept.values()))
    assert after["entropy_bits"] > before["entropy_bits"] and after["head_share"] < before["head_share"]
    assert before["entries_hit"] == after["entries_hit"] == 60


def test_distribution_numbers():
    d = distribution([0, 50, 25, 25] + [1] * 97)
    assert d["entries_hit"] == 100 and d["matches"] == 197 and d["head_entries"] == 1
    assert d["head_share"] == pytest.approx(50 / 197, abs=1e-6)
    assert d["curve"][0] == [1, 50] and d["curve"][-1] == [100, 1]
    assert distribution([])["entries_hit"] == 0 and distribution([])["head_share"] is None
    assert distribution([7])["entropy_bits"] == 0.0


def test_entry_counts_combine_merges_partials_exactly():
    fn, data = EntryCountsFn(), [(("", i), (i * 37) % 101 + 1) for i in range(500)]
    parts = [data[i::3] for i in range(3)]
    accs = []
    for part in parts:
        acc = fn.create_accumulator()
        for kv in part:
            acc = fn.add_input(acc, kv)
        accs.append(acc)
    counts, top = fn.extract_output(fn.merge_accumulators(accs))
    assert sorted(counts) == sorted(c for _, c in data)
    assert top == sorted((-c, lang, e) for (lang, e), c in data)[:20]


@pytest.mark.parametrize("items, langs", [(("de",), ("de",)), (("de=x",), ("de",)), (("de=0",), ("de",)),
                                          (("fr=10",), ("de",)), (("=10",), ("de",)), (("de=²",), ("de",))])
def test_bad_t_by_language_is_an_error(items, langs):
    with pytest.raises(ValueError):
        parse_t_by_language(items, langs)


def test_spec_from_config(tmp_path):
    spec = balance_spec(_cfg(_metadata(tmp_path, ["dog", "cat"]), t=7, t_by_language=("de=3",)), ("en", "de"))
    assert (spec.n_entries, spec.t_for("de"), spec.t_for("en"), spec.languages) == (2, 3, 7, ("en", "de"))
    assert balance_spec(_cfg(_metadata(tmp_path, ["dog"])), ("en", "de")).languages == ()  # no t per language
    with pytest.raises(ValueError):
        balance_spec(_cfg(t=0))


# --- the Beam stage ----------------------------------------------------------------------------------

def _write_sorted(items, path):
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(sorted(items, key=json.dumps), fh, sort_keys=True)


def _run_stage(records, spec, out_dir, shuffle_seed=None):
    """Run BalanceByMetadata; write kept keys, rejections and stats values as sorted JSON files."""
    records = list(records)
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(records)
    p = local_test_pipeline()
    kept, rejected, stats = p | beam.Create(records, reshuffle=False) | BalanceByMetadata(spec)
    for name, pcoll, fn in (("kept", kept, lambda r: [pair_of(r).key, pair_of(r).caption]),
                            ("rejected", rejected, lambda r: [r.key, r.stage, r.reason, r.detail]),
                            ("stats", stats, list)):
        (pcoll | f"Row{name}" >> beam.Map(fn) | f"List{name}" >> beam.combiners.ToList()
         | f"Write{name}" >> beam.Map(_write_sorted, str(out_dir / f"{name}.json")))
    result = p.run()
    result.wait_until_finish()
    return result


def _outputs(out_dir):
    return {name: (out_dir / f"{name}.json").read_bytes() for name in ("kept", "rejected", "stats")}


def test_stage_balances_a_skewed_pool_and_reruns_byte_identical(tmp_path):
    entries, pool = _skewed_pool(12, 600)
    no_match = [_pair(10_000 + i, "nothing listed here") for i in range(5)]
    spec = balance_spec(_cfg(_metadata(tmp_path, entries), t=50))
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        run.mkdir()
    result = _run_stage(pool + no_match, spec, runs[0])
    _run_stage(pool + no_match, spec, runs[1], shuffle_seed=3)  # other order, other bundles
    assert _outputs(runs[0]) == _outputs(runs[1])
    kept = json.loads((runs[0] / "kept.json").read_text())
    rejected = json.loads((runs[0] / "rejected.json").read_text())
    assert len(kept) + len(rejected) == len(pool) + len(no_match)
    reasons = Counter(r[2] for r in rejected)
    assert reasons[DropReason.BALANCE_NO_MATCH.value] == 5
    assert set(reasons) == {DropReason.BALANCE_NO_MATCH.value, DropReason.BALANCE_DOWNSAMPLED.value}
    assert any("all 1 entries over t=50; most common 'entry000' (600 matches)" in r[3] for r in rejected)
    counts = Counter(normalise(p.caption).split()[2] for p in pool)
    kept_per_entry = Counter(normalise(c).split()[2] for _, c in kept)
    _assert_kept_near_min(kept_per_entry, counts, 50)
    assert _counter(result, DropReason.BALANCE_DOWNSAMPLED.value) == reasons[DropReason.BALANCE_DOWNSAMPLED.value]
    stats = {name: value for _, name, value in json.loads((runs[0] / "stats.json").read_text())}
    assert stats["before"]["matches"] == len(pool) and stats["before"]["top"][0] == ["entry000", 600]
    assert stats["after"]["head_share"] < stats["before"]["head_share"]
    assert stats["after"]["entropy_bits"] > stats["before"]["entropy_bits"]
    assert sorted(stats["top_kept"]) == sorted([e, n] for e, n in kept_per_entry.items())  # 12 < 20: all
    assert (stats["t"], stats["metadata_entries"], stats["placement"]) == (50, 12, "before_fetch")


def test_stage_uses_the_t_of_each_language(tmp_path):
    en = [_pair(i, "a photo of a dog running in the green park today") for i in range(300)]
    de = [_pair(1000 + i, "ein Foto von einem Hund, der heute im grünen Park läuft") for i in range(300)]
    spec = balance_spec(_cfg(_metadata(tmp_path, ["dog", "hund"]), t=1000, t_by_language=("de=60",)),
                        ("en", "de"))
    assert language_of(en[0].caption, spec.languages) == "en" and language_of(de[0].caption, spec.languages) == "de"
    _run_stage(en + de, spec, tmp_path)
    kept = json.loads((tmp_path / "kept.json").read_text())
    assert sum(1 for _, c in kept if "dog" in c) == 300  # en: 300 matches, under t
    assert abs(sum(1 for _, c in kept if "Hund" in c) - 60) <= 4 * math.sqrt(60 * 0.8)
    stats = {name: value for _, name, value in json.loads((tmp_path / "stats.json").read_text())}
    assert [name for name, _ in stats["before"]["top"]] == ["de:hund", "en:dog"]


def test_stage_takes_records_after_the_download_and_isolates_a_bad_record(tmp_path):
    spec = balance_spec(_cfg(_metadata(tmp_path, ["dog"]), t=5, before_fetch=False))
    image = ResizedImage(pair=_pair(1, "my dog"), data=b"x", ext="jpg", width=1, height=1, original_width=1,
                         original_height=1, sha256="0" * 64)
    bad = _pair(2, 12345)  # not text: one record's bug, not the run's
    _run_stage([image, bad], spec, tmp_path)
    assert [k for k, _ in json.loads((tmp_path / "kept.json").read_text())] == [image.pair.key]
    [rej] = json.loads((tmp_path / "rejected.json").read_text())
    assert rej[0] == bad.key and rej[2] == DropReason.BALANCE_INTERNAL.value and "AttributeError" in rej[3]


def test_stage_with_no_match_at_all_rejects_everything_and_still_writes_stats(tmp_path):
    spec = balance_spec(_cfg(_metadata(tmp_path, ["zebra"]), t=5))
    _run_stage([_pair(i, "nothing listed here") for i in range(3)], spec, tmp_path)
    assert json.loads((tmp_path / "kept.json").read_text()) == []
    assert [r[2] for r in json.loads((tmp_path / "rejected.json").read_text())] == [DropReason.BALANCE_NO_MATCH.value] * 3
    stats = {name: value for _, name, value in json.loads((tmp_path / "stats.json").read_text())}
    assert stats["before"]["entries_hit"] == stats["after"]["entries_hit"] == 0 and stats["top_kept"] == []
