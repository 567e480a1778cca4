"""The deterministic offline sample web: generated pages and images, and a loopback server.

Input: a seed. Output: a ``SampleSite`` (resources + expected outcome of every pair)
and a ``SampleServer`` that serves it on 127.0.0.1. Used by the sample/demo commands,
tests/mini_web and the e2e test; never by the pipeline's stages.
"""

from pipeline.sample.server import SampleServer
from pipeline.sample.site import (
    ManifestEntry,
    Resource,
    SampleSite,
    generate_site,
    manifest_by_pair,
    write_site,
)

__all__ = [
    "ManifestEntry",
    "Resource",
    "SampleServer",
    "SampleSite",
    "generate_site",
    "manifest_by_pair",
    "write_site",
]
