"""The service's in-memory view of the store's device registry, for the synchronous EDHOC lookup.

EDHOC's responder asks for a device's credential in the middle of a packet (a plain function
call), and the store is asynchronous, so the service keeps a snapshot of every enrolled device,
refreshed from the store at start and every ``refresh_interval`` seconds (and at once by
:meth:`DeviceRegistry.replace` when the service learns of a change). Revoked devices are absent
from the snapshot, so their handshakes find no credential and fail; their resumptions, which
need no credential, are refused by the service when the session layer reports them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from gateway import edhoc
from gateway.edhoc import Credential, IdCred
from gateway.session.handshake import identity_of
from gateway.store import DeviceRecord, EnrollmentState

__all__ = ["DeviceRegistry", "EnrolledDevice"]


@dataclass(frozen=True)
class EnrolledDevice:
    """An enrolled device: its store record, its parsed EDHOC credential, its session identity."""

    record: DeviceRecord
    credential: Credential
    identity: bytes  # what the session layer reports as peer_identity (handshake.identity_of)


class DeviceRegistry:
    """Enrolled devices by kid and by session identity (a snapshot of the store's registry)."""

    def __init__(self) -> None:
        self._by_kid: dict[bytes, EnrolledDevice] = {}
        self._by_identity: dict[bytes, EnrolledDevice] = {}
        self.unreadable: int = 0  # records whose credential did not parse (skipped, counted)
        self.refused: int = 0  # lookups that found no enrolled credential (unknown or revoked)
        self.on_refused: Callable[[], None] | None = None  # told of each refusal (metrics, tests)

    def replace(self, records: Iterable[DeviceRecord]) -> None:
        """Take a fresh snapshot: enrolled devices only; revoked ones disappear."""
        by_kid: dict[bytes, EnrolledDevice] = {}
        unreadable = 0
        for record in records:
            if record.state is not EnrollmentState.ENROLLED:
                continue
            try:
                credential = Credential.from_ccs(record.credential)
            except edhoc.LocalEdhocError:
                unreadable += 1
                continue
            by_kid[record.kid] = EnrolledDevice(record, credential, identity_of(credential))
        self._by_kid = by_kid
        self._by_identity = {device.identity: device for device in by_kid.values()}
        self.unreadable = unreadable

    def devices(self) -> Sequence[EnrolledDevice]:
        """Every enrolled device of the snapshot."""
        return list(self._by_kid.values())

    def by_kid(self, kid: bytes) -> EnrolledDevice | None:
        """The enrolled device with this kid, or None (unknown or revoked)."""
        return self._by_kid.get(kid)

    def by_identity(self, identity: bytes) -> EnrolledDevice | None:
        """The enrolled device the session layer names ``identity``, or None."""
        return self._by_identity.get(identity)

    def lookup(self, id_cred: IdCred) -> Credential | None:
        """EDHOC's credential lookup: the enrolled credential ``id_cred`` names, else None."""
        if id_cred.credential is None and id_cred.x5t is None:
            device = self._by_kid.get(id_cred.kid) if id_cred.kid is not None else None
            if device is not None:
                return device.credential
        else:
            for device in self._by_kid.values():  # by value or by certificate hash: rare
                if id_cred.matches(device.credential):
                    return device.credential
        self.refused += 1
        if self.on_refused is not None:
            self.on_refused()
        return None
