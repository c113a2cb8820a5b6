"""Shared fixtures: test certificates and endpoint factories.

Certificates come from ``$ARANYA_QUIC_TEST_CERTS`` (a directory holding
ca.pem, alice.crt/.key, bob.crt/.key, carol.crt/.key and stranger.crt/.key)
or are made once per session by running, from the repo root,
``go run ./examples/certgen -out DIR -other-ca alice bob carol``.

The library is found as the package finds it: ``$ARANYA_QUIC_LIB`` or
``<repo>/build/libaranya_quic.so`` (``make lib``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import aranya_quic as aq

from support import CERTS_ENV, NAMES, REPO_ROOT, config_for


@pytest.fixture(scope="session", autouse=True)
def _library_loads() -> None:
    """Fail early, with the package's own message, when the library is missing."""
    aq.library()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory with ca.pem and NAME.crt / NAME.key for alice, bob, carol, stranger."""
    env = os.environ.get(CERTS_ENV)
    if env:
        d = Path(env)
        missing = [f for n in (*NAMES, "stranger") for f in (f"{n}.crt", f"{n}.key") if not (d / f).is_file()]
        if missing or not (d / "ca.pem").is_file():
            pytest.fail(f"${CERTS_ENV}={env} lacks ca.pem or {missing}; generate with "
                        f"`go run ./examples/certgen -out {env} -other-ca {' '.join(NAMES)}`")
        return d
    go = shutil.which("go")
    if go is None:
        pytest.fail(f"`go` not found: install Go or set ${CERTS_ENV} to a directory of test certificates")
    d = tmp_path_factory.mktemp("certs")
    subprocess.run(
        [go, "run", "./examples/certgen", "-out", str(d), "-other-ca", *NAMES],
        cwd=REPO_ROOT,
        check=True,
    )
    return d


@pytest.fixture
def make_endpoint(certs: Path) -> Iterator[Callable[..., aq.Endpoint]]:
    """Factory ``make_endpoint(name, **config_fields)``; every endpoint is closed at teardown."""
    made: list[aq.Endpoint] = []

    def make(name: str = "alice", **kwargs: Any) -> aq.Endpoint:
        ep = aq.Endpoint(config_for(certs, name, **kwargs))
        made.append(ep)
        return ep

    yield make
    for ep in reversed(made):
        ep.close()


@pytest.fixture
def alice(make_endpoint: Callable[..., aq.Endpoint]) -> aq.Endpoint:
    return make_endpoint("alice")


@pytest.fixture
def bob(make_endpoint: Callable[..., aq.Endpoint]) -> aq.Endpoint:
    return make_endpoint("bob")
