"""Property-based: mutated and random documents through the parser, the crawl's reader and the
transform, and random hrefs through the client's link check, raise nothing but the project's own
errors (`VeeamEtlError` subclasses). Seed documents are rendered by the simulator, so they cover
every entity type, references, query pages, the root, the logon session and an error.
"""

from __future__ import annotations

import contextlib

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from etl import parse, registry, transform
from etl.client import EMClient
from etl.errors import VeeamEtlError
from etl.simulator import Quirks, World
from etl.simulator.render import Renderer

ORIGIN = "http://em01.lab:9399"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _seeds() -> list[bytes]:
    docs = []
    for quirks in (
        Quirks(),
        Quirks(bom=True, prefixed_namespace=True, shuffle_attributes=True, unknown_elements=True),
    ):
        w = World(seed=9, servers=2, jobs=2, vms_per_job=2, days=1, quirks=quirks)
        r = Renderer(w, ORIGIN)
        objs = [w.servers[0], w.job_sessions[0], w.tasks[0], w.points[0]]
        docs += [r.entity_doc(o) for o in objs] + [r.ref_doc(o) for o in objs]
        for kind, items in (("ReplicaTaskSession", w.tasks[:3]), ("VmReplicaPoint", w.points[:3])):
            docs.append(r.query_doc(kind, items, True, 1, 3, 2, [("Next", f"{ORIGIN}/api/query?page=2")]))
            docs.append(r.collection_doc(kind, items, False))
        docs += [r.root_doc(), r.logon_doc("s1", "demo"), r.error_doc(500, "boom")]
    return docs


SEEDS = _seeds()


def read_everything(body: bytes) -> None:
    """What the crawl does with a body, and every other reader on top."""
    url = f"{ORIGIN}/api/query"
    try:
        root = parse.document(body, url)
        parse.paging(root, url)
        parse.links(root)
        parse.error_message(body)
        for entity_type in registry.TYPES.values():
            entities, _ = transform.read(root, entity_type, url)
            for e in entities:
                for link in e.parents.values():
                    parse.uid_from_href(link.href, "X")
            for el in parse.entities(root, entity_type.types):
                with contextlib.suppress(VeeamEtlError):
                    transform.entity(entity_type, el)
        with contextlib.suppress(VeeamEtlError):
            transform.read_page(body, registry.REPLICA_TASK_SESSION, url)
    except VeeamEtlError:
        pass


@st.composite
def byte_mutations(draw) -> bytes:
    body = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "duplicate"]))
        if not body:
            break
        i = draw(st.integers(0, len(body) - 1))
        if op == "flip":
            body[i] = draw(st.integers(0, 255))
        elif op == "delete":
            del body[i : i + draw(st.integers(1, 40))]
        elif op == "insert":
            body[i:i] = draw(
                st.sampled_from(
                    [
                        b"<",
                        b">",
                        b"&",
                        b"&amp;",
                        b"\x00",
                        b"\xff",
                        b"]]>",
                        b"<!--",
                        b'"',
                        b"<Link/>",
                        b"</Links>",
                        b"\xef\xbb\xbf",
                        b"&#0;",
                        b"&#x10FFFF;",
                    ]
                )
            )
        elif op == "truncate":
            del body[i:]
        else:
            j = draw(st.integers(i, min(len(body), i + 200)))
            body[i:i] = body[i:j]
    return bytes(body)


text_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "-1",
            "9" * 30,
            "1e9",
            "0x10",
            "１２",
            "٣",
            "NaN",
            "true",
            "None",
            "2025-02-30T00:00:00Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2025-08-15T20:00:24.12345678Z",
            "http://[::1",
            "http://h:99999/x",
            "http://h:port/x",
            "//",
            "/",
            "?format=Entity",
            "urn:veeam:",
            "http://evil.example:9399/api/backupServers/1",
        ]
    ),
)


@st.composite
def field_mutations(draw) -> bytes:
    """A well-formed seed with random text in random fields and attributes (hrefs included)."""
    body = draw(st.sampled_from(SEEDS))
    root = etree.fromstring(body.removeprefix(b"\xef\xbb\xbf"))
    elements = list(root.iter())
    for _ in range(draw(st.integers(1, 8))):
        el = draw(st.sampled_from(elements))
        action = draw(st.sampled_from(["text", "attr", "drop_attr", "drop_child", "add_child"]))
        value = "".join(c for c in draw(text_values) if c.isprintable() and c not in "\ud800\udfff")
        if action == "text":
            el.text = value
        elif action == "attr":
            el.set(
                draw(
                    st.sampled_from(
                        ["UID", "Href", "Name", "Rel", "Type", "PageNum", "PagesCount", "VmDisplayName"]
                    )
                ),
                value,
            )
        elif action == "drop_attr" and el.attrib:
            del el.attrib[draw(st.sampled_from(sorted(el.attrib)))]
        elif action == "drop_child" and len(el):
            el.remove(el[draw(st.integers(0, len(el) - 1))])
        elif action == "add_child":
            child = etree.SubElement(
                el,
                draw(
                    st.sampled_from(
                        [
                            "Link",
                            "Links",
                            "UID",
                            "Port",
                            "TotalSize",
                            "CreationTimeUTC",
                            "State",
                            "ReplicaTaskSession",
                        ]
                    )
                ),
            )
            child.text = value
    return etree.tostring(root)


@FUZZ
@given(byte_mutations())
def test_mutated_bytes_raise_only_our_errors(body):
    read_everything(body)


@FUZZ
@given(field_mutations())
def test_mutated_fields_raise_only_our_errors(body):
    read_everything(body)


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_our_errors(body):
    read_everything(body)


@FUZZ
@given(text_values)
def test_typed_readers_raise_only_data_errors(text):
    for reader in (parse.utc, parse.integer, parse.boolean):
        with contextlib.suppress(VeeamEtlError):
            reader(text, "u")
    with contextlib.suppress(VeeamEtlError):
        parse.uid_from_href(text, "BackupServer")


@FUZZ
@given(st.one_of(text_values, st.text(max_size=60)))
def test_links_are_followed_only_on_the_configured_origin(href):
    """Whatever an href says, the client requests only its configured origin, or refuses."""
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(404)

    client = EMClient("http://127.0.0.1:9399/api", "demo", "pw", transport=httpx.MockTransport(handler))
    client._em_origins.add(("http", "em01.lab:9399"))  # EM's own name, as learnt at logon
    with contextlib.suppress(VeeamEtlError):
        client.get(href)
    assert all((u.scheme, u.host, u.port) == ("http", "127.0.0.1", 9399) for u in seen), seen
