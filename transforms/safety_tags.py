"""TagSafety: zero-shot safety tags from the CLIP image embeddings ScoreClip already computed.

Input: ``ScoredImage`` carrying ``image_embedding`` (L2-normalised float16 bytes).
Output: the same record with ``safety = ((tag, score), ...)``, a score in [0, 1] per
tag, written as ``safety_<tag>`` columns. Nothing is dropped here (SafetyFilter in
filters/safety.py decides); a record without an embedding keeps ``safety = ()``.

No second image pass: the image side is the stored embedding. Two ways to score:

- **prompts** (a YAML file, configs/safety_prompts.yaml): per tag, positive and
  negative prompts. Their text embeddings are computed once per run, on one worker
  (``MakeTagger``: the scorer's text tower), and reach TagSafety as a side input.
  A tag's score is the softmax mass of its positive prompts among all of its
  prompts, over ``logit_scale * cosine`` (CLIP's zero-shot classification).
- **head** (a ``.npz`` file): ``weight`` [tags, dim], ``bias`` [tags], ``tags``
  (names) and optionally ``thresholds`` [tags]; score = sigmoid(weight @ e + bias).
  A small linear probe trained on the embeddings, e.g. LAION's safety heads.

Files are read through Beam ``FileSystems`` (local or ``gs://``). A bad file is a
``SafetyInputError`` before the pipeline runs; a head whose dimension differs from
the embeddings' is one at the first record.

Keys at 100M pairs: no shuffle; the tagger is one side input (the prompts' text embeddings,
tags x prompts x 512 floats, or the head's weights: kilobytes), built once on one worker.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence

import apache_beam as beam
import numpy as np
import yaml
from apache_beam.io.filesystems import FileSystems

from pipeline.records import ScoredImage

_TAG = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class SafetyInputError(ValueError):
    """A prompt file or linear head that cannot be used; raised before the run."""


@dataclass(frozen=True)
class SafetySpec:
    """What TagSafety needs (pipeline/specs.py: ``safety_spec``, from the ``safety`` section)."""

    prompts: str  # YAML prompt sets (used when ``head`` is empty)
    head: str  # .npz linear head ("" = prompts)
    logit_scale: float  # softmax temperature over a tag's prompts
    thresholds: tuple  # ((tag, threshold or None), ...) overriding the file's


@dataclass(frozen=True)
class Tagger:
    """What TagSafety needs: tag names and a matrix to multiply the image embeddings with."""

    tags: tuple
    thresholds: tuple  # per tag, after overrides (None: never filtered)
    method: str  # "prompts" | "head"
    matrix: np.ndarray  # prompts: [P, d] text embeddings; head: [tags, d] weights
    bias: np.ndarray  # head: [tags]
    groups: tuple  # prompts: (first row, positives, prompts) per tag; head: ()
    logit_scale: float  # prompts: safety.logit_scale (SafetySpec); head: unused (0.0)


def _read(path: str) -> bytes:
    try:
        with FileSystems.open(path) as fh:
            return fh.read()
    except (OSError, IOError) as exc:
        raise SafetyInputError(f"cannot read {path}: {exc}") from None


def _tag_name(tag, where: str) -> str:
    if not isinstance(tag, str) or not _TAG.match(tag):
        raise SafetyInputError(f"{where}: tag {tag!r} must be a lower-case identifier (a-z, 0-9, _)")
    return tag


def load_prompt_sets(path: str) -> dict:
    """{tag: (positives, negatives, threshold)} from a prompt YAML; SafetyInputError when malformed."""
    try:
        doc = yaml.safe_load(_read(path).decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SafetyInputError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or not doc:
        raise SafetyInputError(f"{path}: expected a mapping of tag -> {{positive, negative, threshold}}")
    sets = {}
    for tag, entry in doc.items():
        _tag_name(tag, path)
        if not isinstance(entry, dict) or set(entry) - {"positive", "negative", "threshold"}:
            raise SafetyInputError(f"{path}: {tag}: expected keys positive, negative, threshold")
        pos, neg = entry.get("positive"), entry.get("negative")
        for name, prompts in (("positive", pos), ("negative", neg)):
            if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) and p for p in prompts):
                raise SafetyInputError(f"{path}: {tag}.{name}: expected a non-empty list of prompts")
        threshold = entry.get("threshold", 0.5)
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                      or not 0 <= threshold <= 1):
            raise SafetyInputError(f"{path}: {tag}.threshold must be a number in [0, 1] (null: never filter)")
        sets[tag] = (tuple(pos), tuple(neg), None if threshold is None else float(threshold))
    return sets


def load_head(path: str) -> dict:
    """{"weight", "bias", "tags", "thresholds"} from a ``.npz`` head; SafetyInputError when malformed."""
    try:
        with np.load(io.BytesIO(_read(path)), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (ValueError, OSError) as exc:
        raise SafetyInputError(f"{path}: not a .npz file: {exc}") from None
    missing = {"weight", "bias", "tags"} - set(arrays)
    if missing:
        raise SafetyInputError(f"{path}: missing array(s) {sorted(missing)} (need weight, bias, tags)")
    weight, bias = arrays["weight"].astype(np.float32), arrays["bias"].astype(np.float32).reshape(-1)
    tags = tuple(_tag_name(str(t), path) for t in arrays["tags"].reshape(-1))
    thresholds = arrays.get("thresholds", np.full(len(tags), 0.5)).astype(np.float64).reshape(-1)
    if weight.ndim != 2 or weight.shape[0] != len(tags) or bias.shape != (len(tags),) \
            or thresholds.shape != (len(tags),):
        raise SafetyInputError(f"{path}: expected weight [tags, dim], bias [tags], thresholds [tags] for "
                               f"{len(tags)} tags; got weight {weight.shape}, bias {bias.shape}")
    return {"weight": weight, "bias": bias, "tags": tags, "thresholds": tuple(float(t) for t in thresholds)}


def _apply_overrides(tags: Sequence[str], thresholds: Sequence[float], overrides) -> tuple:
    override = dict(overrides)
    unknown = sorted(set(override) - set(tags))
    if unknown:
        raise SafetyInputError(f"safety.thresholds names unknown tag(s) {unknown}; tags are {list(tags)}")
    return tuple(override.get(t, thr) for t, thr in zip(tags, thresholds))


def tag_thresholds(spec: SafetySpec) -> dict:
    """{tag: threshold} the run uses (reads the files: a bad one fails here, before the run)."""
    if spec.head:
        head = load_head(spec.head)
        tags, thresholds = head["tags"], head["thresholds"]
    else:
        sets = load_prompt_sets(spec.prompts)
        tags, thresholds = tuple(sets), tuple(s[2] for s in sets.values())
    return dict(zip(tags, _apply_overrides(tags, thresholds, spec.thresholds)))


def prompt_tagger(sets: dict, encode_text: Callable, logit_scale: float, overrides=()) -> Tagger:
    """A Tagger from prompt sets; ``encode_text(list of str) -> [n, d]`` L2-normalised embeddings."""
    prompts, groups = [], []
    for pos, neg, _thr in sets.values():
        groups.append((len(prompts), len(pos), len(pos) + len(neg)))
        prompts.extend(pos + neg)
    matrix = np.asarray(encode_text(prompts), dtype=np.float32)
    tags = tuple(sets)
    thresholds = _apply_overrides(tags, [s[2] for s in sets.values()], overrides)
    return Tagger(tags, thresholds, "prompts", matrix, np.zeros(0, np.float32), tuple(groups), logit_scale)


def head_tagger(head: dict, overrides=()) -> Tagger:
    thresholds = _apply_overrides(head["tags"], head["thresholds"], overrides)
    return Tagger(head["tags"], thresholds, "head", head["weight"], head["bias"], (), 0.0)


def tag_scores(tagger: Tagger, embeddings: np.ndarray) -> np.ndarray:
    """[n, tags] scores in [0, 1] for [n, d] image embeddings."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.shape[1] != tagger.matrix.shape[1]:
        raise SafetyInputError(f"safety {tagger.method}: dimension {tagger.matrix.shape[1]} but the image "
                               f"embeddings have {embeddings.shape[1]} (a head for another CLIP model?)")
    logits = embeddings @ tagger.matrix.T
    if tagger.method == "head":
        return 1.0 / (1.0 + np.exp(-(logits + tagger.bias)))
    out = np.empty((len(embeddings), len(tagger.tags)), dtype=np.float64)
    for i, (start, positives, total) in enumerate(tagger.groups):
        block = tagger.logit_scale * logits[:, start:start + total].astype(np.float64)
        block = np.exp(block - block.max(axis=1, keepdims=True))
        out[:, i] = block[:, :positives].sum(axis=1) / block.sum(axis=1)
    return out


def scorer_text_encoder(scorer_spec) -> Callable:
    """``encode_text`` with the run's own open_clip model (its text tower only)."""
    import torch

    from transforms.clip_model import load_scorer

    scorer = load_scorer(scorer_spec)

    def encode(texts):
        with torch.inference_mode():
            emb = scorer.model.encode_text(scorer.tokenizer(list(texts)).to(scorer.device))
        return torch.nn.functional.normalize(emb.float(), dim=-1).cpu().numpy()

    return encode


def load_safety_inputs(spec: SafetySpec) -> dict:
    """The head arrays or the prompt sets of ``spec``, read now (small files)."""
    return load_head(spec.head) if spec.head else load_prompt_sets(spec.prompts)


def make_tagger(spec: SafetySpec, scorer_spec=None, encode_text: Optional[Callable] = None,
                loaded: Optional[dict] = None) -> Tagger:
    """The run's Tagger: the head, or the prompt sets encoded by ``encode_text`` (default: the scorer).

    ``loaded``: what ``load_safety_inputs`` read (else the files are read here).
    """
    loaded = load_safety_inputs(spec) if loaded is None else loaded
    if spec.head:
        return head_tagger(loaded, spec.thresholds)
    encode = encode_text or scorer_text_encoder(scorer_spec)
    return prompt_tagger(loaded, encode, spec.logit_scale, spec.thresholds)


class MakeTagger(beam.PTransform):
    """PBegin -> a one-element PCollection: the Tagger (prompt texts encoded once, on one worker).

    The prompt or head file is read at graph construction and travels with the
    pipeline (a few KB), so workers need no access to the launcher's paths.
    """

    def __init__(self, spec: SafetySpec, scorer_spec=None, encode_text: Optional[Callable] = None):
        super().__init__()
        self.spec, self.scorer_spec, self.encode_text = spec, scorer_spec, encode_text
        self.loaded = load_safety_inputs(spec)

    def expand(self, pbegin):
        return (pbegin | "SafetySpec" >> beam.Create([self.spec])
                | "EncodeSafetyPrompts" >> beam.Map(make_tagger, self.scorer_spec, self.encode_text, self.loaded))


def _tag(scored: ScoredImage, tagger: Tagger) -> ScoredImage:
    if not scored.image_embedding:
        return scored
    vector = np.frombuffer(scored.image_embedding, dtype="<f2").astype(np.float32)[None, :]
    scores = tag_scores(tagger, vector)[0]
    return replace(scored, safety=tuple((t, round(float(s), 6)) for t, s in zip(tagger.tags, scores)))


class TagSafety(beam.PTransform):
    """ScoredImage -> ScoredImage with ``safety`` set, from the Tagger side input (nothing dropped)."""

    def __init__(self, tagger):
        super().__init__()
        self.tagger = tagger  # one-element PCollection (MakeTagger)

    def expand(self, scored):
        return scored | "Tag" >> beam.Map(_tag, beam.pvalue.AsSingleton(self.tagger))


def project_path(path: str) -> str:
    """A relative path missing from the CWD is looked up from the project root (configs/safety_prompts.yaml)."""
    if not path or "://" in path or os.path.isabs(path) or os.path.exists(path):
        return path
    candidate = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), path)
    return candidate if os.path.exists(candidate) else path


def safety_stats(spec: SafetySpec, filtering: bool) -> dict:
    """stats.json ``safety``: the method, prompts and thresholds used (reads the files: fails before the run)."""
    thresholds = tag_thresholds(spec)
    out = {"method": "head" if spec.head else "prompts", "filter": filtering, "thresholds": thresholds}
    if spec.head:
        out["head"] = spec.head
    else:
        out["prompts_file"] = spec.prompts
        out["prompts"] = {tag: {"positive": list(pos), "negative": list(neg)}
                          for tag, (pos, neg, _thr) in load_prompt_sets(spec.prompts).items()}
        out["logit_scale"] = spec.logit_scale
    return out
