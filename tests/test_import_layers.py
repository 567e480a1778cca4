"""The import layers of .importlinter hold, and each contract catches the import it forbids.

``lint-imports`` (import-linter) reads .importlinter at the project root: the trainer imports only
pipeline.shard_format of ours; transforms never import filters; transforms and filters never
import pipeline.config / pipeline.specs (stages take specs); only the entry points import
pipeline.build; no import cycle among the modules of a package.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / ".importlinter"


def _lint_imports() -> str:
    exe = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or shutil.which("lint-imports")
    assert exe, "import-linter is missing: pip install -e '.[dev]'"
    proc = subprocess.run([exe, "--config", str(CONFIG), "--no-cache", "--no-logo"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_the_import_contracts_hold():
    out = _lint_imports()
    assert "0 broken" in out and " kept" in out


@pytest.fixture(scope="module")
def checked():
    """(options, graph) of the project as lint-imports sees it, for planting forbidden imports."""
    import grimp
    from importlinter.application import use_cases
    from importlinter.application.use_cases import read_user_options
    from importlinter.configuration import configure

    configure()  # what the lint-imports command does first (readers, graph builder)
    options = read_user_options(str(CONFIG))
    use_cases._register_contract_types(options)  # forbidden, protected, ... (as lint_imports does)
    graph = grimp.build_graph(*options.session_options["root_packages"], cache_dir=None,
                              exclude_type_checking_imports=True)
    return options, graph


def _broken(checked, planted=None) -> list[str]:
    """Names of the contracts the project's graph breaks, with one more import (importer, imported)."""
    from importlinter.application import use_cases

    options, graph = checked
    graph = copy.deepcopy(graph)
    if planted:
        graph.add_import(importer=planted[0], imported=planted[1], line_number=1, line_contents="planted")
    # _build_report is import-linter's own checking loop (2.16, pinned in the dev extra)
    report = use_cases._build_report(graph=graph, graph_building_duration=0, user_options=options,
                                     limit_to_contracts=(), show_timings=False, verbose=False)
    return sorted(contract.name for contract, check in report.get_contracts_and_checks() if not check.kept)


@pytest.mark.parametrize("planted,contract", [
    (("trainer.loop", "pipeline.records"), "trainer imports only pipeline.shard_format of ours"),
    (("transforms.fetch", "filters.base"), "transforms never import filters"),
    (("filters.image_rules", "pipeline.config"), "stages take specs"),
    (("transforms.resize", "pipeline.specs"), "stages take specs"),
    (("pipeline.outputs", "pipeline.build"), "nothing imports pipeline.build but the entry points"),
    (("transforms.http_client", "transforms.fetch"), "no import cycles between the modules of a package"),
])
def test_each_contract_catches_what_it_forbids(checked, planted, contract):
    before = [name for name in _broken(checked) if name.startswith(contract)]
    assert before == [], f"already broken without the planted import: {before}"
    assert any(name.startswith(contract) for name in _broken(checked, planted))
