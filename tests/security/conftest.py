"""Fixtures of the security tests: the integration suite's callers, and fake servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.integration.conftest import admin_api, quiet  # noqa: F401 (fixtures)
from tests.security.servers import FakeServer


@pytest.fixture
def servers() -> Iterator[Callable[..., FakeServer]]:
    """Make threaded HTTP servers that record what reaches them; all stopped afterwards."""
    made: list[FakeServer] = []

    def make(*args, **kwargs) -> FakeServer:
        made.append(FakeServer(*args, **kwargs))
        return made[-1]

    yield make
    for server in made:
        server.stop()
