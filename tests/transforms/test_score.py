"""transforms.score and transforms.clip_model: ScoreClip + ClipThreshold with a fake ModelHandler, and the real
OpenClipHandler on a tiny untrained open_clip model (no weights, no hub)."""

import io
import math

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.ml.inference.base import ModelHandler, PredictionResult
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image

from filters.base import ApplyRules
from filters.clip_threshold import ClipThresholdRule
from pipeline.metrics import Counter
from pipeline.records import AltPair, DropReason, ResizedImage, ScoredImage
from pipeline.specs import scorer_spec
from tests.conftest import counter as _counter, local_test_pipeline
from tests.default_specs import spec_with
from transforms.clip_handler import OpenClipHandler
from transforms.clip_model import ScorerUnavailable, cosine_scores, load_scorer
from transforms.score import ScoreClip, SkipScoring

TINY = spec_with(scorer_spec, model="configs/models/wit-tiny.json", pretrained="", batch_size=3, device="cpu")




def _jpeg(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buf, format="JPEG")
    return buf.getvalue()


def _image(key: str, caption: str, colour=(200, 30, 30)) -> ResizedImage:
    pair = AltPair(key=key, page_url="http://s/p.html", image_url=f"http://s/{key}.jpg", caption=caption)
    return ResizedImage(pair=pair, data=_jpeg(colour), ext="jpg", width=64, height=48, original_width=64,
                        original_height=48, sha256=key)


class _FakeModel:
    """Stands in for a model (RunInference keeps a weak reference to it, so not a str)."""


class FakeScoreHandler(ModelHandler):
    """Scores each image with the number its caption starts with ("0.9 a red circle" -> 0.9)."""

    def __init__(self):
        super().__init__(min_batch_size=1, max_batch_size=2)

    def load_model(self):
        return _FakeModel()

    def run_inference(self, batch, model, inference_args=None):
        assert isinstance(model, _FakeModel)
        return [PredictionResult(item, float(item.pair.caption.split()[0]), "fake") for item in batch]


# -- ScoreClip + ClipThreshold with the fake handler ---------------------------------

def test_score_clip_and_threshold_pipeline():
    images = [_image("high", "0.9 a red circle"), _image("edge", "0.3 on the threshold"),
              _image("low", "0.1 a mismatched caption"), _image("neg", "-0.5 opposite of the image")]
    p = local_test_pipeline()
    created = p | beam.Create(images)
    scored = created | "ScoreClip" >> ScoreClip(spec_with(scorer_spec, model="fake", pretrained=""), FakeScoreHandler())
    kept, rejected = scored | "ClipThreshold" >> ApplyRules([ClipThresholdRule(0.3)])
    unscored = created | "SkipScoring" >> SkipScoring()
    assert_that(scored | "Scores" >> beam.Map(lambda s: (s.image.pair.key, s.clip_score, s.clip_model)),
                equal_to([("high", 0.9, "fake"), ("edge", 0.3, "fake"), ("low", 0.1, "fake"),
                          ("neg", -0.5, "fake")]), label="scored")
    assert_that(kept | "KeptKeys" >> beam.Map(lambda s: s.image.pair.key), equal_to(["high", "edge"]),
                label="kept")  # the threshold itself passes: only scores below it are dropped
    assert_that(rejected | "Rejected" >> beam.Map(lambda r: (r.key, r.stage, r.reason, r.detail)),
                equal_to([("low", "clip", "clip.below_threshold", "0.1000 < 0.3"),
                          ("neg", "clip", "clip.below_threshold", "-0.5000 < 0.3")]), label="rejected")
    assert_that(unscored | "Unscored" >> beam.Map(lambda s: (s.image.pair.key, s.clip_score, s.clip_model)),
                equal_to([(k, None, "") for k in ("high", "edge", "low", "neg")]), label="unscored")
    result = p.run()
    result.wait_until_finish()
    assert _counter(result, Counter.IMAGES_SCORED.value) == 4
    assert _counter(result, DropReason.CLIP_BELOW_THRESHOLD.value) == 2
    assert _counter(result, DropReason.CLIP_SCORE_ERROR.value) == 0


def test_threshold_rule_without_a_score():
    unscored = ScoredImage(image=_image("k", "0.9 x"))
    assert ClipThresholdRule(0.28).check(unscored) == (DropReason.CLIP_SCORE_ERROR, "no score")
    assert ClipThresholdRule(0.28).check(ScoredImage(image=unscored.image, clip_score=0.28)) is None


def test_scorer_spec_model_id():
    assert TINY.model_id == "wit-tiny"
    assert spec_with(scorer_spec, model="ViT-B-32", pretrained="laion2b_s34b_b79k").model_id == "ViT-B-32/laion2b_s34b_b79k"
    assert spec_with(scorer_spec, model="configs/models/wit-tiny.json", pretrained="/ckpt/run1/final.pt").model_id == "wit-tiny/final.pt"


# -- the real open_clip handler, tiny and untrained --------------------------------

@pytest.fixture(scope="module")
def tiny_scorer():
    return OpenClipHandler(TINY).load_model()


BATCH = [_image("red", "a red square", (220, 20, 20)), _image("green", "a green circle", (20, 200, 40)),
         _image("blue", "three blue stars on white", (20, 30, 210))]


def test_open_clip_handler_scores_a_batch(tiny_scorer):
    handler = OpenClipHandler(TINY)
    results = list(handler.run_inference(BATCH, tiny_scorer))
    assert [r.example for r in results] == BATCH
    assert {r.model_id for r in results} == {"wit-tiny"}
    scores = [r.inference[0] for r in results]
    assert all(isinstance(s, float) and -1.0 <= s <= 1.0 and math.isfinite(s) for s in scores)
    for _score, image_emb, text_emb in (r.inference for r in results):  # float16, L2-normalised
        for emb in (image_emb, text_emb):
            vec = np.frombuffer(emb, dtype="<f2").astype(np.float32)
            assert vec.size == tiny_scorer.model.text_projection.shape[1]
            assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-2
        assert _score == pytest.approx(float(np.frombuffer(image_emb, "<f2").astype(np.float32)
                                             @ np.frombuffer(text_emb, "<f2").astype(np.float32)), abs=5e-3)
    again = [r.inference[0] for r in handler.run_inference(BATCH, tiny_scorer)]
    assert again == pytest.approx(scores, abs=1e-6)  # eval mode: deterministic
    images = [Image.open(io.BytesIO(item.data)).convert("RGB") for item in BATCH]
    direct = cosine_scores(tiny_scorer, images, [item.pair.caption for item in BATCH])
    assert direct == pytest.approx(scores, abs=1e-6)
    assert handler.get_num_bytes(BATCH) == sum(len(item.data) for item in BATCH)
    assert tiny_scorer.device == "cpu" and not tiny_scorer.model.training


def test_score_clip_pipeline_with_the_real_handler():
    p = local_test_pipeline()
    scored = p | beam.Create(BATCH) | ScoreClip(TINY)  # the model is loaded on the worker, not pickled
    assert_that(scored | "Check" >> beam.Map(
        lambda s: (s.image.pair.key, s.clip_model, -1.0 <= s.clip_score <= 1.0)),
        equal_to([(item.pair.key, "wit-tiny", True) for item in BATCH]))
    result = p.run()
    result.wait_until_finish()
    assert _counter(result, Counter.IMAGES_SCORED.value) == 3


# -- load_scorer failures: at startup, fast, with how to fix it --------------------

def test_missing_local_weights_file():
    with pytest.raises(ScorerUnavailable, match="no such file"):
        load_scorer(spec_with(scorer_spec, model="configs/models/wit-tiny.json", pretrained="/nonexistent/x.pt", device="cpu"))


def test_unknown_tag_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ScorerUnavailable, match="score.pretrained=") as info:
        load_scorer(spec_with(scorer_spec, model="ViT-B-32", pretrained="no-such-tag", device="cpu"))
    assert "known tags" in str(info.value)


def test_known_tag_without_cached_weights_offline():
    import huggingface_hub
    import open_clip

    if not huggingface_hub.constants.HF_HUB_OFFLINE:
        pytest.skip("HF_HUB_OFFLINE is not set: a missing model would be retried for ~45 s")
    repo = open_clip.get_pretrained_cfg("ViT-B-32", "laion2b_s34b_b79k")["hf_hub"].rstrip("/")
    for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
        if isinstance(huggingface_hub.try_to_load_from_cache(repo, filename), str):
            pytest.skip("the ViT-B-32 weights are in the local Hugging Face cache")
    with pytest.raises(ScorerUnavailable, match="laion2b_s34b_b79k.*score.pretrained="):
        load_scorer(spec_with(scorer_spec, model="ViT-B-32", pretrained="laion2b_s34b_b79k", device="cpu"))


@pytest.mark.gpu
def test_cuda_path_agrees_with_cpu(tiny_scorer):
    """autocast + pinned-memory path: same scores as fp32 CPU within half-precision error."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    spec = spec_with(scorer_spec, model="configs/models/wit-tiny.json", pretrained="", batch_size=3, device="cuda")
    gpu = load_scorer(spec)
    gpu.model.load_state_dict(tiny_scorer.model.state_dict())
    cpu_scores = [r.inference[0] for r in OpenClipHandler(TINY).run_inference(BATCH, tiny_scorer)]
    gpu_scores = [r.inference[0] for r in OpenClipHandler(spec).run_inference(BATCH, gpu)]
    assert gpu.amp_dtype is not None and gpu_scores == pytest.approx(cpu_scores, abs=2e-2)


def test_local_copy_keeps_local_paths_and_reports_unreachable_remote_ones():
    from transforms.clip_model import ScorerUnavailable, local_copy

    assert local_copy("models/wit-tiny-scorer.pt") == "models/wit-tiny-scorer.pt"
    assert local_copy("ViT-B-32") == "ViT-B-32"
    with pytest.raises(ScorerUnavailable, match="nosuchfs://bucket/w.pt"):
        local_copy("nosuchfs://bucket/w.pt")
