"""Shared fixtures for the mini-web tests: the default sample site, generated once."""

import pytest

from pipeline.sample import SampleSite, generate_site


@pytest.fixture(scope="session")
def site() -> SampleSite:
    return generate_site()
