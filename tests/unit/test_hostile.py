"""A corpus of hostile or broken documents (tests/hostile/, outcomes in expected.json), read by the
parser, by the crawl's entity reader and by the client as if EM had answered them with 200.

parse:  hostile (HostileDocument, never retried) | malformed (ParseError, retriable) | ok
client: refused (one request, HostileDocument)   | retried (gives up after the budget) | ok
Every file is also fed straight to lxml with our parser settings, bypassing the DOCTYPE check, to
show the parser itself reads no file and opens no connection.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from lxml import etree

from etl import parse, registry, transform
from etl.client import EMClient, RetryPolicy
from etl.errors import HostileDocument, ParseError, SourceError

CORPUS = Path(__file__).resolve().parents[1] / "hostile"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())
PASSWD_MARKERS = (b"root:", "root:")


def body_of(name: str, trap) -> bytes:
    return (CORPUS / name).read_bytes().replace(b"TRAP", trap.host.encode())


def test_corpus_and_expectations_match():
    files = {p.name for p in CORPUS.iterdir() if p.suffix == ".xml"}
    assert files == set(EXPECTED), "every corpus file has an expected outcome and vice versa"
    assert len(files) >= 15


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parser_outcome(name, trap):
    want = EXPECTED[name]
    url = f"http://em:9399/api/hostile/{name}"
    body = body_of(name, trap)
    if want["parse"] == "hostile":
        with pytest.raises(HostileDocument, match="DOCTYPE or entities") as info:
            parse.document(body, url)
        assert url in str(info.value) and not info.value.retriable
    elif want["parse"] == "malformed":
        with pytest.raises(ParseError) as info:
            parse.document(body, url)
        assert url in str(info.value) and info.value.retriable and not isinstance(info.value, HostileDocument)
    else:
        root = parse.document(body, url)
        entities, rejects = transform.read(root, registry.BACKUP_SERVER, url)
        if "row" in want:
            assert len(entities) == 1 and not rejects
            row = entities[0].row
            assert {k: row[k] for k in want["row"]} == want["row"]
            assert not any(m in str(v) for v in row.values() for m in ("root:", "TRAP"))
        if "reject" in want:
            assert not entities and len(rejects) == 1 and want["reject"] in rejects[0].error
    assert trap.hits == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_lxml_settings_alone_read_no_file_and_no_url(name, trap):
    """Defence in depth: even a document that slipped past the DOCTYPE check expands nothing."""
    body = body_of(name, trap)
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    try:
        root = etree.fromstring(body, parse._parser())
    except etree.XMLSyntaxError:
        root = None
    if root is not None:
        text = etree.tostring(root)
        assert b"root:" not in text and b"TRAP-WAS-READ" not in text
        assert len(text) < 10_000  # billion laughs not expanded
    assert trap.hits == []


def _serve(body: bytes):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": "application/xml"})

    return handler


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_client_outcome(name, trap):
    want = EXPECTED[name]
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _serve(body_of(name, trap))(request)

    client = EMClient(
        "http://em:9399/api",
        "demo",
        "pw",
        retry=RetryPolicy(attempts=3, base=0, cap=0),
        transport=httpx.MockTransport(handler),
    )
    url = "http://em:9399/api/query?type=BackupServer"
    if want["client"] == "refused":
        with pytest.raises(HostileDocument, match="DOCTYPE"):
            client.document(url)
        assert len(seen) == 1  # never retried
    elif want["client"] == "retried":
        with pytest.raises(SourceError, match="giving up after 3 attempts"):
            client.document(url)
        assert len(seen) == 3
    else:
        assert client.document(url) is not None and len(seen) == 1
    assert trap.hits == []


def test_huge_document_is_refused_before_parsing():
    head = b'<QueryResult xmlns="http://www.veeam.com/ent/v1.0"><Entities><BackupServers>'
    body = head + b" " * (parse.MAX_BODY_BYTES + 1 - len(head))
    assert len(body) > parse.MAX_BODY_BYTES
    with pytest.raises(HostileDocument, match="exceeds"):
        parse.document(body, "http://em:9399/api/query")


def test_client_stops_reading_an_endless_body(monkeypatch):
    """A body with no Content-Length that never ends: read up to the limit, then refused."""
    monkeypatch.setattr(parse, "MAX_BODY_BYTES", 1 << 20)
    produced = []

    def endless():
        while True:
            produced.append(1)
            yield b"<x>" * 1024

    def handler(request):
        return httpx.Response(200, content=endless())

    client = EMClient(
        "http://em:9399/api",
        "demo",
        "pw",
        retry=RetryPolicy(attempts=3, base=0, cap=0),
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(HostileDocument, match="exceeds the 1048576-byte limit"):
        client.get("http://em:9399/api/query")
    assert len(produced) <= (1 << 20) // 3072 + 2


def test_client_refuses_an_oversized_content_length_without_reading(monkeypatch):
    read = []

    def body():
        read.append(1)
        yield b"never"

    def handler(request):
        return httpx.Response(200, content=body(), headers={"Content-Length": str(parse.MAX_BODY_BYTES + 1)})

    client = EMClient("http://em:9399/api", "demo", "pw", transport=httpx.MockTransport(handler))
    with pytest.raises(HostileDocument, match="exceeds"):
        client.get("http://em:9399/api/query")
    assert read == []
