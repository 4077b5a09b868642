"""The account's own message archive (XEP-0313 MAM), sans-IO: queries, results and a catch-up.

Theory of operation.  A server that archives (XEP-0313 §1) keeps every chat message the account
sent, as the server accepted it, with the child elements the sender put in; so a gateway that
gave each message a deterministic origin-id (XEP-0359 §3, :func:`origin_id_element`) can ask the
archive, after it lost track of what the server acknowledged (a crash, a fresh stream), which of
its pending messages the server already has, and resend only the others.

* :func:`build_archive_query` is the ``<query/>`` payload of the ``<iq type='set'/>`` (§4): a
  data form with ``start`` (§4.1.1) and a result-set page (XEP-0059 ``<max/>``, ``<after/>``).
* :func:`parse_archive_result_untrusted` reads one result ``<message/>`` (§4.2): the
  ``<result/>``'s query id and archive id, and of the forwarded message its origin-id, id and
  addressees.  It is total: a value, None (not a result), or :class:`ArchiveParseError`; ids
  longer than :data:`MAX_ID_LENGTH` and results with more than :data:`MAX_CHILDREN` children at
  any level it reads are refused before any is kept.
* :func:`parse_archive_fin_untrusted` reads the ``<fin/>`` that ends a page (§4.3).
* :class:`ArchiveCatchUp` pages through the archive since a time, matching origin-ids, within a
  bound on pages and results, so a busy archive costs bounded work and memory: past the bound
  the catch-up ends ``exhausted`` and the caller must treat what it did not match as unknown.

Results are accepted only from the account itself (the archive's address, or no ``from``,
§4.2): anyone else could otherwise make the gateway believe the server had a message it never
sent.  That check is the dispatcher's (:mod:`gateway.xmpp.dispatch`).
"""

from __future__ import annotations

import dataclasses
import datetime
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Final

from gateway.xmpp.jid import Jid, JidError
from gateway.xmpp.stanzas import CLIENT_NS, StanzaParseError

__all__ = [
    "DEFAULT_MAX_PAGES",
    "DEFAULT_PAGE_SIZE",
    "FORWARD_NS",
    "MAM_NS",
    "MAX_CHILDREN",
    "MAX_ID_LENGTH",
    "RSM_NS",
    "SID_NS",
    "ArchiveCatchUp",
    "ArchiveFin",
    "ArchiveParseError",
    "ArchivedMessage",
    "build_archive_query",
    "format_timestamp",
    "origin_id_element",
    "origin_id_of",
    "parse_archive_fin_untrusted",
    "parse_archive_result_untrusted",
]

MAM_NS: Final = "urn:xmpp:mam:2"  # XEP-0313 §2 (v0.6+)
FORWARD_NS: Final = "urn:xmpp:forward:0"  # XEP-0297
RSM_NS: Final = "http://jabber.org/protocol/rsm"  # XEP-0059
DATA_FORMS_NS: Final = "jabber:x:data"  # XEP-0004
SID_NS: Final = "urn:xmpp:sid:0"  # XEP-0359

MAX_ID_LENGTH: Final = 256  # characters of an archive id, origin-id or stanza id we keep
MAX_CHILDREN: Final = 64  # children of <result/>, <forwarded/> or the forwarded message we scan
DEFAULT_PAGE_SIZE: Final = 100  # results asked per page (XEP-0059 <max/>)
DEFAULT_MAX_PAGES: Final = 20  # pages one catch-up reads before it gives up (exhausted)


class ArchiveParseError(StanzaParseError):
    """A MAM result or ``<fin/>`` from the server is malformed."""


def _q(local: str, namespace: str) -> str:
    return f"{{{namespace}}}{local}"


def format_timestamp(seconds: float) -> str:
    """XEP-0082 DateTime in UTC, whole seconds rounded down (``2026-12-01T21:09:32Z``)."""
    moment = datetime.datetime.fromtimestamp(max(0.0, seconds), tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def origin_id_element(origin_id: str) -> ET.Element:
    """``<origin-id xmlns='urn:xmpp:sid:0' id='...'/>`` (XEP-0359 §3.2) for an outbound message."""
    return ET.Element(_q("origin-id", SID_NS), {"id": origin_id})


def origin_id_of(message: ET.Element) -> str | None:
    """The origin-id of a message we built (our own element: no bounds needed)."""
    element = message.find(_q("origin-id", SID_NS))
    return None if element is None else element.get("id")


def build_archive_query(
    query_id: str,
    *,
    start: float | None = None,
    after: str | None = None,
    max_items: int = DEFAULT_PAGE_SIZE,
) -> ET.Element:
    """The ``<query/>`` of one page: archived since ``start`` (seconds), after ``after``."""
    query = ET.Element(_q("query", MAM_NS), {"queryid": query_id})
    form = ET.SubElement(query, _q("x", DATA_FORMS_NS), {"type": "submit"})
    form_type = ET.SubElement(form, _q("field", DATA_FORMS_NS), {"var": "FORM_TYPE"})
    form_type.set("type", "hidden")
    ET.SubElement(form_type, _q("value", DATA_FORMS_NS)).text = MAM_NS
    if start is not None:
        field = ET.SubElement(form, _q("field", DATA_FORMS_NS), {"var": "start"})
        ET.SubElement(field, _q("value", DATA_FORMS_NS)).text = format_timestamp(start)
    page = ET.SubElement(query, _q("set", RSM_NS))
    ET.SubElement(page, _q("max", RSM_NS)).text = str(max_items)
    if after is not None:
        ET.SubElement(page, _q("after", RSM_NS)).text = after
    return query


@dataclasses.dataclass(frozen=True)
class ArchivedMessage:
    """One archived message of a query's results: what a catch-up needs, not the body."""

    query_id: str | None
    archive_id: str
    origin_id: str | None
    stanza_id: str | None  # the forwarded message's ``id`` attribute
    to: Jid | None


@dataclasses.dataclass(frozen=True)
class ArchiveFin:
    """The end of one page (XEP-0313 §4.3): complete, and the last result's archive id."""

    complete: bool
    last: str | None


def _bounded_id(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not value or len(value) > MAX_ID_LENGTH:
        raise ArchiveParseError(f"the archive's {what} is empty or too long")
    return value


def _children(element: ET.Element, what: str) -> list[ET.Element]:
    if len(element) > MAX_CHILDREN:
        raise ArchiveParseError(f"too many children in {what}")
    return list(element)


def parse_archive_result_untrusted(message: ET.Element) -> ArchivedMessage | None:
    """The MAM result a received ``<message/>`` carries, or None if it carries none (§4.2)."""
    results = [c for c in _children(message, "the message") if c.tag == _q("result", MAM_NS)]
    if not results:
        return None
    if len(results) > 1:
        raise ArchiveParseError("more than one archive result in a message")
    result = results[0]
    archive_id = _bounded_id(result.get("id"), "result id")
    if archive_id is None:
        raise ArchiveParseError("an archive result without an id")
    query_id = _bounded_id(result.get("queryid"), "query id")
    forwarded = [c for c in _children(result, "<result/>") if c.tag == _q("forwarded", FORWARD_NS)]
    if len(forwarded) != 1:
        raise ArchiveParseError("an archive result must forward exactly one message")
    inner = [
        c for c in _children(forwarded[0], "<forwarded/>") if c.tag == _q("message", CLIENT_NS)
    ]
    if len(inner) != 1:
        raise ArchiveParseError("an archive result must forward exactly one message")
    archived = inner[0]
    origin_ids = [
        c.get("id")
        for c in _children(archived, "the archived message")
        if c.tag == _q("origin-id", SID_NS)
    ]
    if len(origin_ids) > 1:
        raise ArchiveParseError("an archived message with more than one origin-id")
    origin_id = _bounded_id(origin_ids[0], "origin-id") if origin_ids else None
    to_text = archived.get("to")
    try:
        to = Jid.parse_untrusted(to_text) if to_text is not None else None
    except JidError as exc:
        raise ArchiveParseError("an archived message with an invalid 'to'") from exc
    return ArchivedMessage(
        query_id=query_id,
        archive_id=archive_id,
        origin_id=origin_id,
        stanza_id=_bounded_id(archived.get("id"), "message id"),
        to=to,
    )


def parse_archive_fin_untrusted(payload: ET.Element | None) -> ArchiveFin:
    """The ``<fin/>`` of an iq result (§4.3); raises :class:`ArchiveParseError` if absent."""
    if payload is None or payload.tag != _q("fin", MAM_NS):
        raise ArchiveParseError("an archive query answered without <fin/>")
    complete = payload.get("complete") in ("true", "1")
    last: str | None = None
    for child in _children(payload, "<fin/>"):
        if child.tag == _q("set", RSM_NS):
            for item in _children(child, "<set/>"):
                if item.tag == _q("last", RSM_NS):
                    last = _bounded_id((item.text or "").strip() or None, "last id")
    return ArchiveFin(complete=complete, last=last)


class ArchiveCatchUp:
    """Which of ``pending`` origin-ids the archive holds since ``start``: one query at a time.

    Call :meth:`next_query` for the page to ask, feed each result of that query to
    :meth:`result_received` and its ``<fin/>`` to :meth:`page_finished`; when :attr:`done`,
    :attr:`matched` holds the origin-ids found, and :attr:`exhausted` says whether the archive
    was read to its end (False) or the bounds stopped the catch-up first (True: what was not
    matched may still be in the archive).
    """

    def __init__(
        self,
        pending: Iterable[str],
        *,
        query_id: str,
        start: float,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        self.pending = frozenset(pending)
        self.query_id = query_id
        self.start = start
        self.page_size = page_size
        self.max_pages = max_pages
        self.matched: set[str] = set()
        self.pages = 0
        self.results = 0
        self.done = not self.pending
        self.exhausted = False
        self._after: str | None = None
        self._asked = False

    def next_query(self) -> ET.Element | None:
        """The next page's ``<query/>``, or None if the catch-up is done or a page is out."""
        if self.done or self._asked:
            return None
        self._asked = True
        self.pages += 1
        return build_archive_query(
            self.query_id, start=self.start, after=self._after, max_items=self.page_size
        )

    def result_received(self, result: ArchivedMessage) -> None:
        """One result message; results of another query, or past the page size, are ignored."""
        if self.done or not self._asked or result.query_id != self.query_id:
            return
        if self.results >= self.pages * self.page_size:
            return  # more than the pages asked for: the server's excess is not our work
        self.results += 1
        if result.origin_id is not None and result.origin_id in self.pending:
            self.matched.add(result.origin_id)
        if self.matched == self.pending:
            self.done = True

    def page_finished(self, fin: ArchiveFin) -> None:
        """The ``<fin/>`` of the page asked: done, or ready for :meth:`next_query`."""
        if self.done or not self._asked:
            return
        self._asked = False
        if fin.complete or fin.last is None or fin.last == self._after:
            self.done = True
        elif self.pages >= self.max_pages:
            self.done = True
            self.exhausted = True
        else:
            self._after = fin.last
