"""transforms.safety_tags: prompt and head taggers, file validation, TagSafety in a pipeline, the columns."""

import io
from dataclasses import replace

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipeline import shard_format
from pipeline.config import CurateConfig, SafetyConfig
from pipeline.records import AltPair, ResizedImage, ScoredImage
from pipeline.specs import safety_spec
from tests.conftest import local_test_pipeline
from tests.default_specs import spec_with
from transforms.safety_tags import (MakeTagger, SafetyInputError, TagSafety, head_tagger, load_head, load_prompt_sets,
                                    make_tagger, project_path, safety_stats, tag_scores, tag_thresholds)
from transforms.write_shards import sample_row

# A 4-d toy embedding space: axis 0 "explicit", 1 "safe", 2 "watermark", 3 "clean".
VOCAB = {"explicit": 0, "safe": 1, "watermarked": 2, "clean": 3}
PROMPTS = """
nsfw: {positive: [explicit], negative: [safe], threshold: 0.7}
watermark: {positive: [watermarked], negative: [clean]}
"""


def fake_encoder(texts):
    out = np.zeros((len(texts), 4), np.float32)
    for i, text in enumerate(texts):
        out[i, VOCAB[text]] = 1.0
    return out


@pytest.fixture
def prompt_file(tmp_path):
    path = tmp_path / "prompts.yaml"
    path.write_text(PROMPTS)
    return str(path)


def _unit(*values):
    v = np.array(values, np.float32)
    return v / np.linalg.norm(v)


def test_prompt_scores_follow_the_nearest_prompts(prompt_file):
    tagger = make_tagger(spec_with(safety_spec, prompts=prompt_file, logit_scale=10.0), encode_text=fake_encoder)
    assert tagger.tags == ("nsfw", "watermark") and tagger.thresholds == (0.7, 0.5)
    scores = tag_scores(tagger, np.stack([_unit(1, 0, 0, 1), _unit(0, 1, 1, 0), _unit(1, 1, 1, 1)]))
    assert scores[0, 0] > 0.99 and scores[0, 1] < 0.01  # explicit, clean
    assert scores[1, 0] < 0.01 and scores[1, 1] > 0.99  # safe, watermarked
    np.testing.assert_allclose(scores[2], [0.5, 0.5], atol=1e-6)  # equidistant: undecided
    assert ((scores >= 0) & (scores <= 1)).all()


def test_threshold_overrides_and_unknown_tags(prompt_file):
    spec = spec_with(safety_spec, prompts=prompt_file, thresholds=(("watermark", 0.9),))
    assert tag_thresholds(spec) == {"nsfw": 0.7, "watermark": 0.9}
    with pytest.raises(SafetyInputError, match="unknown tag"):
        tag_thresholds(spec_with(safety_spec, prompts=prompt_file, thresholds=(("gore", 0.5),)))
    cfg = CurateConfig(safety=SafetyConfig(prompts=prompt_file, thresholds=("nsfw=0.25",)))
    assert safety_spec(cfg).thresholds == (("nsfw", 0.25),)
    off = CurateConfig(safety=SafetyConfig(prompts=prompt_file, thresholds=("nsfw=off",)))
    assert safety_spec(off).thresholds == (("nsfw", None),)
    assert tag_thresholds(spec_with(safety_spec, prompts=prompt_file, thresholds=(("nsfw", None),)))["nsfw"] is None
    for bad in ("nsfw", "nsfw=high", "nsfw=1.5"):
        with pytest.raises(SafetyInputError, match="tag=value"):
            safety_spec(CurateConfig(safety=SafetyConfig(thresholds=(bad,))))


def _npz(tmp_path, **arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path = tmp_path / "head.npz"
    path.write_bytes(buf.getvalue())
    return str(path)


def test_linear_head(tmp_path):
    path = _npz(tmp_path, weight=np.array([[10, 0, 0, 0], [0, 0, 0, 0]], np.float32), bias=np.array([0, 2.0]),
                tags=np.array(["nsfw", "my_tag"]), thresholds=np.array([0.9, 0.6]))
    tagger = head_tagger(load_head(path))
    assert tagger.tags == ("nsfw", "my_tag") and tagger.thresholds == (0.9, 0.6)
    scores = tag_scores(tagger, np.stack([_unit(1, 0, 0, 0), _unit(0, 1, 0, 0)]))
    np.testing.assert_allclose(scores[:, 1], 1 / (1 + np.exp(-2.0)), rtol=1e-6)
    assert scores[0, 0] > 0.99 and scores[1, 0] == pytest.approx(0.5)
    with pytest.raises(SafetyInputError, match="dimension 4 but the image embeddings have 3"):
        tag_scores(tagger, np.ones((1, 3)))
    stats = safety_stats(spec_with(safety_spec, head=path), filtering=True)
    assert stats == {"method": "head", "filter": True, "thresholds": {"nsfw": 0.9, "my_tag": 0.6}, "head": path}


@pytest.mark.parametrize("text, match", [
    ("- a list\n", "mapping of tag"),
    ("nsfw: {positive: [x]}\n", "negative: expected a non-empty list"),
    ("nsfw: {positive: [], negative: [y]}\n", "positive: expected a non-empty list"),
    ("nsfw: {positive: [x], negative: [y], threshold: 2}\n", "threshold must be a number"),
    ("nsfw: {positive: [x], negative: [y], colour: red}\n", "expected keys"),
    ("NSFW Tag: {positive: [x], negative: [y]}\n", "lower-case identifier"),
    ("nsfw: [unclosed\n", "not valid YAML"),
])
def test_bad_prompt_files(tmp_path, text, match):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(SafetyInputError, match=match):
        load_prompt_sets(str(path))


def test_bad_heads(tmp_path):
    with pytest.raises(SafetyInputError, match="cannot read"):
        load_head(str(tmp_path / "missing.npz"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(SafetyInputError, match="not a .npz"):
        load_head(str(tmp_path / "junk.npz"))
    with pytest.raises(SafetyInputError, match="missing array"):
        load_head(_npz(tmp_path, weight=np.zeros((1, 4))))
    with pytest.raises(SafetyInputError, match="expected weight"):
        load_head(_npz(tmp_path, weight=np.zeros((2, 4)), bias=np.zeros(2), tags=np.array(["a"])))


def test_bundled_prompt_file_is_valid():
    sets = load_prompt_sets(project_path("configs/safety_prompts.yaml"))
    assert {"nsfw", "watermark", "screenshot"} <= set(sets)


def _scored(key, vector):
    pair = AltPair(key=key, page_url="http://s/p", image_url=f"http://s/{key}.jpg", caption="a red circle")
    image = ResizedImage(pair=pair, data=b"x", ext="jpg", width=8, height=8, original_width=8, original_height=8,
                         sha256=key)
    emb = b"" if vector is None else _unit(*vector).astype("<f2").tobytes()
    return ScoredImage(image=image, clip_score=0.5, image_embedding=emb, text_embedding=emb)


def test_tag_safety_pipeline_sets_scores_from_the_side_input(prompt_file):
    spec = spec_with(safety_spec, prompts=prompt_file, logit_scale=10.0)
    p = local_test_pipeline()
    tagger = p | "Tagger" >> MakeTagger(spec, encode_text=fake_encoder)
    records = p | beam.Create([_scored("aa", (1, 0, 0, 1)), _scored("bb", (0, 1, 1, 0)), _scored("cc", None)])
    tagged = records | TagSafety(tagger)
    summary = tagged | beam.Map(lambda s: (s.image.pair.key, tuple((t, v > 0.5) for t, v in s.safety)))
    assert_that(summary, equal_to([("aa", (("nsfw", True), ("watermark", False))),
                                   ("bb", (("nsfw", False), ("watermark", True))), ("cc", ())]))
    p.run().wait_until_finish()


def test_safety_columns_in_the_sample_row_and_schema():
    scored = _scored("aa", (1, 0, 0, 0))
    row = sample_row(replace(scored, safety=(("nsfw", 0.75), ("watermark", 0.125))))
    assert row["safety_nsfw"] == 0.75 and row["safety_watermark"] == 0.125
    schema = shard_format.sample_schema([row])
    assert schema.names[-2:] == ["safety_nsfw", "safety_watermark"]
    assert shard_format.sample_schema([sample_row(scored)]) == shard_format.SAMPLE_SCHEMA
