"""LicenseRules: keep only the licences the curator allows (``license.allow``), before download.

Input: ``AltPair`` (or any stage record carrying one; ``AltPair.license`` from
transforms/license.py, "" meaning ``unknown``). Output: via ``ApplyRules``, kept pairs
and ``license.not_allowed`` rejections whose detail names the licence the sample had
(``license=cc-by-nc-4.0``). An allow entry is a licence id (``cc-by-4.0``, ``unknown``,
``other``) or a glob over ids (``cc-by-sa-*`` keeps every version and port of BY-SA);
ids compare lower-case. An empty allow-list keeps everything: build.py adds the stage
only when one is set.

Also ``CountLicenses``: the licence mix of the kept samples, as the stats.json value
``("license", "kept", {id: n})``.

Keys at 100M pairs: ``CountPerLicense`` is a ``Count.PerElement`` (lifted: ``unknown`` with
tens of millions of samples is one partial count per worker bundle); ``CollectLicenses`` lists
the distinct licence ids, a few dozen.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Sequence

import apache_beam as beam

from filters.base import Verdict
from pipeline.records import DropReason, pair_of

UNKNOWN = "unknown"  # what an empty AltPair.license means (transforms/license.py UNKNOWN)


def license_of(record) -> str:
    """The licence id of a stage record's pair ("unknown" when none was captured)."""
    return (pair_of(record).license or UNKNOWN).lower()


def license_allowed(license_id: str, allow: Sequence[str]) -> bool:
    """Is ``license_id`` one of ``allow`` (ids or globs, lower-case)? An empty ``allow`` allows all."""
    if not allow:
        return True
    return any(license_id == entry or ("*" in entry or "?" in entry or "[" in entry)
               and fnmatch.fnmatchcase(license_id, entry) for entry in allow)


@dataclass(frozen=True)
class LicenseRule:
    """``license.not_allowed`` unless the record's licence is in ``allow`` (plain values: pickled)."""

    allow: tuple
    name: str = "license"

    def __post_init__(self):
        object.__setattr__(self, "allow", tuple(str(a).strip().lower() for a in self.allow if str(a).strip()))

    def check(self, record) -> Verdict:
        license_id = license_of(record)
        if license_allowed(license_id, self.allow):
            return None
        return DropReason.LICENSE_NOT_ALLOWED, f"license={license_id[:100]}"


def license_rules(allow: Sequence[str]) -> list:
    """The rules of the LicenseRules stage for ``license.allow``."""
    return [LicenseRule(tuple(allow))]


def license_mix(counts) -> dict:
    """{id: n} from (id, n) pairs, most samples first (ties by id)."""
    return dict(sorted(counts, key=lambda kv: (-kv[1], kv[0])))


class CountLicenses(beam.PTransform):
    """Kept records -> the stats value ``("license", "kept", {id: n})`` (always emitted, {} when none)."""

    def expand(self, kept):
        return (kept
                | "LicenseIds" >> beam.Map(license_of)
                | "CountPerLicense" >> beam.combiners.Count.PerElement()
                | "CollectLicenses" >> beam.combiners.ToList()
                | "LicenseMix" >> beam.Map(lambda counts: ("license", "kept", license_mix(counts))))
