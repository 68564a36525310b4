"""Pure XML vocabulary of the EM REST API: safe parsing, links, paging info, typed readers.

Does no I/O and imports nothing from etl but errors. Every body is untrusted: no DTD, no entity
expansion, no network, bounded size; a DOCTYPE is rejected outright.
"""

from __future__ import annotations

import functools
import re
import threading
from datetime import UTC, datetime
from typing import Any, NamedTuple

from lxml import etree

from .errors import DataError, HostileDocument, ParseError, UnexpectedDocument

NS = "http://www.veeam.com/ent/v1.0"
MAX_BODY_BYTES = 64 * 1024 * 1024
# The roots of EM's document shapes (its entities' roots are typed instead: a `Type` attribute). A body
# outside EM's namespace is accepted only as one of these, or as EM entities (a typed root, or a root
# whose first element is typed: a collection), so a proxy's or load balancer's HTML page answered
# with 200 is not read as an empty result. Which entity types there are is etl.registry's to say.
EM_DOCUMENTS = frozenset(
    {"QueryResult", "EntityReferences", "EntityRef", "Error", "EnterpriseManager", "LogonSession", "QuerySvc"}
)

_local = threading.local()  # lxml parsers must not be shared between threads


def _parser() -> etree.XMLParser:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
        _local.parser = parser
    return parser


def document(body: bytes, url: str) -> etree._Element:
    """Parse an EM response body (bytes: it may carry a BOM or an XML declaration).

    HostileDocument (never retried): over MAX_BODY_BYTES, or any DOCTYPE / entity declaration, in
    any encoding. ParseError (retried: it may be a cut-off transfer): not well-formed, too deep
    (libxml2's limit of 256 levels), not an EM document.
    """
    if not isinstance(body, bytes | bytearray):
        raise ParseError(f"response body is {type(body).__name__}, not bytes", url)
    if len(body) > MAX_BODY_BYTES:
        raise HostileDocument(
            f"response body of {len(body)} bytes exceeds the {MAX_BODY_BYTES}-byte limit", url
        )
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise HostileDocument("document declares a DOCTYPE or entities; refused", url)
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise ParseError(f"malformed XML: {str(exc)[:300]}", url) from None
    if root is None:
        raise ParseError("empty document", url)
    docinfo: Any = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        # the byte check above misses a DOCTYPE in UTF-16 and other encodings; the parser has
        # neither loaded nor expanded it, but such a document is hostile all the same
        raise HostileDocument("document declares a DOCTYPE or entities; refused", url)
    qname = etree.QName(root)
    if qname.namespace not in (NS, None):
        raise ParseError(f"unexpected XML namespace {qname.namespace!r}", url)
    if qname.namespace is None and qname.localname not in EM_DOCUMENTS and not _typed(root):
        raise ParseError(f"not an Enterprise Manager document (root <{qname.localname[:60]}>)", url)
    return root


def _typed(root: etree._Element) -> bool:
    """Whether `root` is an EM entity (it carries a `Type`) or a collection of them (its first
    element does)."""
    if root.get("Type") is not None:
        return True
    first = next((child for child in root if isinstance(child.tag, str)), None)
    return first is not None and first.get("Type") is not None


@functools.lru_cache(maxsize=4096)  # EM documents use a few dozen tags; bounded: hostile ones invent tags
def _local_name(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""  # comments and PIs have no str tag


def em_document(body: bytes, url: str) -> etree._Element:
    """document(), and an `<Error>` root (EM answering an error with a 2xx status) is a ParseError too:
    retried like any page that did not come through."""
    root = document(body, url)
    if local(root) == "Error":
        raise ParseError(f"EM answered an Error document: {(root.get('Message') or '')[:300]}", url)
    return root


def local(el: etree._Element) -> str:
    return _local_name(el.tag)


@functools.lru_cache(maxsize=4096)
def _qualified(tag, name: str) -> str:
    return tag[: tag.index("}") + 1] + name if isinstance(tag, str) and tag.startswith("{") else name


def q(el: etree._Element, name: str) -> str:
    """Qualified tag for `name` in the namespace `el` is in."""
    return _qualified(el.tag, name)


class Link(NamedTuple):
    rel: str
    type: str
    href: str
    name: str | None


def links(el: etree._Element) -> list[Link]:
    box = el.find(q(el, "Links"))
    if box is None:
        return []
    out = []
    for ln in box:
        if _local_name(ln.tag) != "Link":
            continue
        href = ln.get("Href")
        if href:
            out.append(Link(ln.get("Rel", ""), ln.get("Type", ""), href, ln.get("Name")))
    return out


def content(el: etree._Element) -> tuple[dict[str, str | None], list[Link]]:
    """An entity's fields and the links naming other objects, in one pass over its children.

    Fields: child elements other than Links as {local name: stripped text, None when empty}.
    Links: the `Up` and `Related` links, in document order. The transform's hot path: Alternate,
    Down and mount links are skipped before their other attributes are read.
    """
    fields: dict[str, str | None] = {}
    found: list[Link] = []
    for child in el:
        name = _local_name(child.tag)
        if name == "Links":
            for ln in child:
                rel = ln.get("Rel")
                if (rel == "Up" or rel == "Related") and _local_name(ln.tag) == "Link":
                    href = ln.get("Href")
                    if href:
                        found.append(Link(rel, ln.get("Type", ""), href, ln.get("Name")))
        elif name:
            text = child.text
            fields[name] = (text.strip() or None) if text else None
    return fields, found


class Paging(NamedTuple):
    page: int | None
    pages: int | None
    next_href: str | None


def paging(root: etree._Element, url: str) -> Paging:
    info = root.find(q(root, "PagingInfo"))
    if info is None:
        return Paging(None, None, None)
    nxt = next((ln.href for ln in links(info) if ln.rel == "Next"), None)
    return Paging(_opt_int(info.get("PageNum"), url), _opt_int(info.get("PagesCount"), url), nxt)


def entities(root: etree._Element, types: frozenset[str] | str) -> list[etree._Element]:
    """The entity elements whose `Type` attribute is one of `types`, in a query result (under
    `<Entities>`, whatever the wrapper is named), a collection, or a single entity root.

    EM names the wrapper and the element after the type, but not always (em-api.md: CDP sessions
    under `<CdpReplicaSessions>`, agent jobs under a singular wrapper): the `Type` attribute decides.
    """
    wanted = frozenset((types,)) if isinstance(types, str) else types
    if root.get("Type") in wanted:
        return [root]
    box = root.find(q(root, "Entities"))
    return [el for el in _candidates(root if box is None else box) if el.get("Type") in wanted]


def _candidates(box: etree._Element):
    """Elements directly in `box` that carry a Type attribute, or one level down in a wrapper."""
    for child in box:
        if child.get("Type") is not None:
            yield child
        elif isinstance(child.tag, str):
            for el in child:
                if el.get("Type") is not None:
                    yield el


def _query_result(root: etree._Element, expected: str, url: str) -> None:
    """Raise UnexpectedDocument unless `root` is a `<QueryResult>` in EM's namespace with `<PagingInfo>`
    (we always send a page size)."""
    qname = etree.QName(root)
    if qname.localname != "QueryResult" or qname.namespace != NS:
        where = f" in namespace {qname.namespace!r}" if qname.namespace != NS else ""
        raise UnexpectedDocument(f"query answered <{qname.localname[:60]}>{where}, expected {expected}", url)
    if root.find(q(root, "PagingInfo")) is None:
        raise UnexpectedDocument(
            f"query answered a QueryResult without <PagingInfo>, expected {expected}", url
        )


def query_entities(root: etree._Element, types: frozenset[str], url: str) -> list[etree._Element]:
    """The entities of a query page asked for in the Entities format, after checking its shape.

    A page counts only as a `<QueryResult>` in EM's namespace with `<PagingInfo>`. Its entities are
    under `<Entities>`; a result with no list at all (no `<Entities>`, no `<Refs>`) is an empty page:
    EM's serializer leaves null lists out (em-api.md, "Empty results"). Anything else raises
    UnexpectedDocument naming the root found and what was expected: the QuerySvc menu (what
    `/querySvc` answers to a query), a References page, or entities none of which is of the type
    asked for. Zero entities in a well-shaped page is a true empty result.
    """
    expected = "a <QueryResult> with <Entities> and <PagingInfo>"
    _query_result(root, expected, url)
    box = root.find(q(root, "Entities"))
    if box is None:
        if root.find(q(root, "Refs")) is not None:
            raise UnexpectedDocument(
                f"query answered a QueryResult with <Refs> (the References format), expected {expected}", url
            )
        return []  # no list at all: an empty page
    matched, others = [], set()
    for el in _candidates(box):
        kind = el.get("Type")
        if kind in types:
            matched.append(el)
        else:
            others.add(str(kind)[:60])
    if others and not matched:
        raise UnexpectedDocument(
            f"query for {'/'.join(sorted(types))} answered entities of type {', '.join(sorted(others))} only",
            url,
        )
    return matched


def query_refs(root: etree._Element, types: frozenset[str], url: str) -> list[str]:
    """The UIDs of a query page asked for in the References format, after checking its shape.

    A `<QueryResult>` with `<PagingInfo>`: its `<Ref>`s under `<Refs>`; no `<Refs>` (or an empty one) is
    an empty page (em-api.md, "Empty results": a v12 JSON recording shows `"Refs": null`). Raises
    UnexpectedDocument for anything else: not a QueryResult, entities instead of references, or
    references none of which names one of `types` (a Ref's UID is `urn:veeam:<type>:<guid>`).
    """
    expected = "a <QueryResult> with <Refs> and <PagingInfo>"
    _query_result(root, expected, url)
    refs = root.find(q(root, "Refs"))
    if refs is None:
        box = root.find(q(root, "Entities"))
        if box is not None and len(box):
            raise UnexpectedDocument(
                f"query answered a QueryResult with <Entities> (the Entities format), expected {expected}",
                url,
            )
        return []  # no list at all: an empty page
    found, others = [], set()
    for el in refs:
        uid = el.get("UID")
        if not isinstance(el.tag, str) or uid is None:
            continue
        kind = uid.split(":")[2] if uid.count(":") >= 3 else uid
        if kind in types:
            found.append(uid)
        else:
            others.add(kind[:60])
    if others and not found:
        raise UnexpectedDocument(
            f"References query for {'/'.join(sorted(types))} answered references to {', '.join(sorted(others))} only",
            url,
        )
    return found


def error_message(body: bytes) -> str | None:
    """The Message of an EM <Error> body, if the body is one (best effort, never raises)."""
    try:
        root = document(body, "")
    except ParseError:
        return None
    return root.get("Message") if local(root) == "Error" else None


# --- typed readers -------------------------------------------------------------------------------

_DT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?(Z|[+-]\d{2}:\d{2})", re.ASCII
)
_INT = re.compile(r"[+-]?[0-9]{1,20}", re.ASCII)


def utc(text: str | None, url: str | None = None) -> datetime | None:
    """An EM date-time (0-7 fractional digits, `Z`) as an aware UTC datetime; the 7th digit is dropped."""
    if text is None:
        return None
    m = _DT.fullmatch(text)
    if not m:
        raise DataError(f"not an ISO 8601 date-time: {text[:60]!r}", url)
    try:  # the shape is checked above; fromisoformat reads it (fractions past 6 digits are dropped)
        value = datetime.fromisoformat(text)
        return value if m.group(8) == "Z" else value.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise DataError(f"impossible date-time {text[:60]!r}: {exc}", url) from None


def integer(text: str | None, url: str | None = None, bits: int = 64) -> int | None:
    if text is None:
        return None
    if not _INT.fullmatch(text):
        raise DataError(f"not an integer: {text[:60]!r}", url)
    value = int(text)
    if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        raise DataError(f"integer out of {bits}-bit range: {text[:60]!r}", url)
    return value


_DECIMAL = re.compile(
    r"[+-]?(?:[0-9]{1,20}(?:\.[0-9]{0,20})?|\.[0-9]{1,20})(?:[eE][+-]?[0-9]{1,3})?", re.ASCII
)


def decimal(text: str | None, url: str | None = None) -> float | None:
    """A decimal with a `.` (EM writes ratios invariant-culture: `5.71`, `0`) as a float."""
    if text is None:
        return None
    if not _DECIMAL.fullmatch(text):
        raise DataError(f"not a decimal number: {text[:60]!r}", url)
    return float(text)


def _opt_int(text: str | None, url: str) -> int | None:
    try:
        return integer(text, url)
    except DataError as exc:
        raise ParseError(str(exc), url) from None


def boolean(text: str | None, url: str | None = None) -> bool | None:
    if text is None:
        return None
    low = text.lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise DataError(f"not a boolean: {text[:60]!r}", url)


@functools.lru_cache(maxsize=4096)  # parents recur page after page (servers, job sessions): read once
def uid_from_href(href: str, type_name: str) -> str:
    """EM UIDs are `urn:veeam:<Type>:<guid>` where the guid is the Href's last path segment.
    Raises DataError when the href names no object."""
    return _uid_from_href(href, type_name)


def _uid_from_href(href: str, type_name: str) -> str:
    path = href.split("#", 1)[0].split("?", 1)[0]
    if "://" in path:  # an absolute URL: the path starts at the first slash after the host
        rest = path.split("://", 1)[1]
        path = rest[rest.find("/") :] if "/" in rest else ""
    segment = path.rstrip("/").rsplit("/", 1)[-1]
    if not segment or not segment.isprintable() or " " in segment:
        raise DataError(f"{type_name} link {href[:100]!r} names no object")
    return f"urn:veeam:{type_name}:{segment}"
