"""Every test runs with the results cache off and pointed at its own directory: no test
reads a result an earlier run left behind, or writes into the user's cache
(tests/test_cache.py turns it on where it is the subject)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_results_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("KMODEL_CACHE_DIR", str(tmp_path_factory.mktemp("kmodel-cache")))
    monkeypatch.setenv("KMODEL_NO_CACHE", "1")
