"""Fixtures of the TLS tests: one test PKI for the whole session (made in a temporary folder)."""

from __future__ import annotations

import pytest

from rig.v2g.pki import PkiFolder, init_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFolder:
    return init_pki(tmp_path_factory.mktemp("tls") / "pki")
