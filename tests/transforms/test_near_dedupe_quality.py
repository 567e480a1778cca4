"""Near-duplicate quality on generated variants: recall >= 0.95 at precision >= 0.99 (issue 5).

300 groups (150 distinct sample scenes, 150 photo-like textures), each a base plus a
re-encode (JPEG q30-75), a rescale (0.5-0.9x), a crop of up to 10 % of the area and a
colour shift; the mirror image of every base is a non-duplicate control. Hashes come
from the pipeline's own resize + HashImages; groups from the LSH search with the
default config (transforms/lsh.py). Scored pairwise over the components: a false
merge of two groups costs every cross pair, so precision here is strict.
"""

import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.build import lsh_spec
from tests.transforms import near_variants
from transforms.lsh import connected_components, near_duplicate_groups

GROUPS = 300


def _scores(items, components):
    comp = np.array([components.get(i, i) for i in range(len(items))])
    truth = np.array([item.group for item in items])
    upper = np.triu_indices(len(items), 1)
    same_truth = (truth[:, None] == truth[None, :])[upper]
    same_found = (comp[:, None] == comp[None, :])[upper]
    tp = int((same_truth & same_found).sum())
    precision = tp / max(1, int(same_found.sum()))
    recall = tp / max(1, int(same_truth.sum()))
    base = {item.group: i for i, item in enumerate(items) if item.variant == "base"}
    per_variant = {}
    for i, item in enumerate(items):
        if item.variant in near_variants.VARIANTS:
            per_variant.setdefault(item.variant, []).append(comp[i] == comp[base[item.group]])
    mirrored = [comp[i] == comp[base[item.group[:-1]]] for i, item in enumerate(items) if item.variant == "mirror"]
    return precision, recall, {k: float(np.mean(v)) for k, v in per_variant.items()}, float(np.mean(mirrored))


def _search(items):
    spec = lsh_spec(load_config())
    hashes = np.array([item.phash for item in items], dtype=np.uint64)
    colours = np.frombuffer(b"".join(item.colour for item in items), dtype=np.uint8).reshape(len(items), -1)
    return near_duplicate_groups(hashes, spec, colours), spec, hashes, colours


@pytest.fixture(scope="module")
def area_crops():
    return near_variants.generate(GROUPS, seed=5, crop_by_area=True)


def test_recall_and_precision_on_generated_variants(area_crops):
    components, *_ = _search(area_crops)
    precision, recall, per_variant, mirrored = _scores(area_crops, components)
    assert precision >= 0.99, (precision, recall, per_variant)
    assert recall >= 0.95, (precision, recall, per_variant)
    assert per_variant["reencode"] >= 0.98 and per_variant["rescale"] >= 0.98 and per_variant["colour"] >= 0.98
    assert mirrored <= 0.01  # the control: a mirror image is another picture


def test_lsh_finds_what_exhaustive_search_finds(area_crops):
    """The bands lose almost nothing against comparing every pair (what LSH saves us from)."""
    components, spec, hashes, colours = _search(area_crops)
    dist = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    cdist = np.abs(colours[:, None, :].astype(np.int16) - colours[None, :, :]).max(-1)
    rows, cols = np.nonzero(np.triu((dist <= spec.threshold) & (cdist <= spec.colour_delta), 1))
    exhaustive = connected_components(zip(rows.tolist(), cols.tolist()))
    _, recall_lsh, _, _ = _scores(area_crops, components)
    _, recall_all, _, _ = _scores(area_crops, exhaustive)
    assert recall_all - recall_lsh <= 0.01


def test_crops_of_ten_percent_a_side_are_the_limit():
    """Cutting up to 10 % of each side (up to 19 % of the area) is past what a 64-bit pHash
    holds: precision stays, recall drops (measured: ~0.9 overall, ~0.75 on the crops)."""
    items = near_variants.generate(100, seed=7, crop_by_area=False)
    components, *_ = _search(items)
    precision, recall, per_variant, _ = _scores(items, components)
    assert precision >= 0.99
    assert recall >= 0.85 and per_variant["crop"] >= 0.6
