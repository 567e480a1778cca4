"""--incremental: a finished output grown with a new URL list equals a from-scratch run over both lists,
and only the new list's images are downloaded."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.build import Inputs
from pipeline.config import CONFIG_DIR, load_config
from pipeline.run import CannotResume, run_curation
from pipeline.sample import SampleServer, generate_site
from tests.e2e.test_resume import _CountingResources, _files
from transforms.checkpoint import WORK_DIR

OVERRIDES = ["fetch.allow_private_networks=true", "score.enabled=false", "dedupe.near=false", "output.keep_fetched=true"]


def _write_list(path, base_url, entries):
    pq.write_table(pa.table({"url": [base_url + e.image_path for e in entries],
                             "caption": [e.alt for e in entries]}), str(path))


def test_incremental_downloads_only_new_images_and_equals_a_full_run(tmp_path):
    import dataclasses

    base = generate_site(seed=0)
    resources = _CountingResources(base.resources)
    site = dataclasses.replace(base, resources=resources)
    entries = list({e.image_path: e for e in base.manifest}.values())[:80]
    cfg = load_config([CONFIG_DIR / "sample.yaml"], OVERRIDES)
    lists, grown, scratch = tmp_path / "lists", tmp_path / "grown", tmp_path / "scratch"
    lists.mkdir()
    with SampleServer(site) as server:
        _write_list(lists / "a.parquet", server.base_url, entries[:50])
        both = Inputs(url_list=str(lists / "*.parquet"))
        first = run_curation(cfg, both, str(grown))
        with pytest.raises(CannotResume, match="no run to continue"):
            run_curation(cfg, both, str(tmp_path / "nothing"), incremental=True)
        _write_list(lists / "b.parquet", server.base_url, entries[50:])
        before = resources.image_requests
        stats = run_curation(cfg, both, str(grown), incremental=True)
        grown_requests = resources.image_requests - before
        run_curation(cfg, both, str(scratch))

    assert first["pairs_extracted"] == 50 and stats["pairs_extracted"] == 80 and stats["accounting_ok"]
    assert 0 < grown_requests <= 30, grown_requests
    assert (grown / WORK_DIR).exists()
    got = {k: v for k, v in _files(grown).items() if not k.startswith(WORK_DIR)}
    want = {k: v for k, v in _files(scratch).items() if not k.startswith(WORK_DIR)}
    assert sorted(got) == sorted(want)
    assert not [name for name in want if got[name] != want[name]]
