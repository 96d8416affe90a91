"""The whole test session runs with the results cache off and pointed at a directory of
its own: no test reads a result an earlier run left behind or writes into the user's
cache (tests/test_cache.py turns it on where it is the subject).  Set when pytest
starts, before any fixture of any scope runs a check."""

from __future__ import annotations

import os
import shutil
import tempfile

_DIR = None


def pytest_configure(config):
    global _DIR
    _DIR = tempfile.mkdtemp(prefix="kmodel-test-cache-")
    os.environ["KMODEL_CACHE_DIR"] = _DIR
    os.environ["KMODEL_NO_CACHE"] = "1"


def pytest_unconfigure(config):
    if _DIR is not None:
        shutil.rmtree(_DIR, ignore_errors=True)
