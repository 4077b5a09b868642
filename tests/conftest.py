"""Fixtures shared by the whole suite: hypothesis profiles, the private Prosody, slixmpp people."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# The CI machine has two cores shared with a real Prosody; deadlines there measure load, not code.
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")


# -- the private Prosody and the people who use it ------------------------------------------------

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator  # noqa: E402

import pytest  # noqa: E402

from tests.support.person import XmppPerson  # noqa: E402
from tests.support.prosody import Account, ProsodyServer, prosody_available  # noqa: E402


@pytest.fixture(scope="session")
def prosody(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProsodyServer]:
    """A private Prosody for the whole test session (fails, never skips, when it is missing)."""
    if not prosody_available():
        pytest.fail(
            "prosody is not installed; './run test' installs it (apt-get install prosody)",
            pytrace=False,
        )
    server = ProsodyServer(tmp_path_factory.mktemp("prosody"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def running_prosody(prosody: ProsodyServer) -> ProsodyServer:
    """The session's Prosody, restarted first if an earlier test left it stopped."""
    if prosody.pid is None:
        prosody.start()
    return prosody


MakePerson = Callable[..., Awaitable[XmppPerson]]


@pytest.fixture
async def make_person(running_prosody: ProsodyServer) -> AsyncIterator[MakePerson]:
    """An async factory of logged-in slixmpp people; each is logged out after the test."""
    people: list[XmppPerson] = []

    async def make(account: Account | None = None) -> XmppPerson:
        account = account or running_prosody.create_user()
        person = XmppPerson(
            account, running_prosody.host, running_prosody.c2s_port, running_prosody.ca_file
        )
        people.append(person)
        await person.start()
        return person

    try:
        yield make
    finally:
        for person in people:
            await person.close()
