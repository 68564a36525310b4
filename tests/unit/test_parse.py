"""etl.parse: safe parsing, links, paging and typed readers."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from etl import parse
from etl.errors import DataError, HostileDocument, ParseError, UnexpectedDocument

NS = 'xmlns="http://www.veeam.com/ent/v1.0"'


def test_bom_and_declaration_parse(payload):
    body = (
        b"\xef\xbb\xbf"
        + b'<?xml version="1.0" encoding="utf-8"?>\n'
        + payload("seed_task_session_entity.xml")
    )
    root = parse.document(body, "http://em/x")
    assert parse.local(root) == "ReplicaTaskSession"


def test_prefixed_namespace_and_no_namespace():
    root = parse.document(
        b'<v:BackupServer xmlns:v="http://www.veeam.com/ent/v1.0" UID="urn:veeam:BackupServer:1">'
        b"<v:Port>9392</v:Port></v:BackupServer>",
        "u",
    )
    assert parse.content(root)[0] == {"Port": "9392"}
    bare = parse.document(b'<BackupServer Type="BackupServer"><Port>1</Port></BackupServer>', "u")
    assert parse.content(bare)[0] == {"Port": "1"}
    many = b'<BackupServers><BackupServer Type="BackupServer"/></BackupServers>'  # a collection of entities
    assert parse.local(parse.document(many, "u")) == "BackupServers"
    assert parse.local(parse.document(b"<QueryResult/>", "u")) == "QueryResult"  # one of EM's document shapes


@pytest.mark.parametrize(
    "body", [b"<html><head><title>502 Bad Gateway</title></head><body/></html>", b"<BackupServer/>"]
)
def test_a_body_outside_ems_namespace_that_is_no_em_document_is_refused(body):
    # a proxy's page answered with 200 is not an empty result: neither a document shape of EM's nor a
    # typed entity (etl.registry says which types there are; the parser keeps no list of them)
    with pytest.raises(ParseError, match="not an Enterprise Manager document"):
        parse.document(body, "http://em/api/query")


def test_wrong_namespace_is_an_error():
    with pytest.raises(ParseError, match="namespace"):
        parse.document(b'<BackupServer xmlns="urn:other"/>', "http://em/api/x")


@pytest.mark.parametrize(
    "body",
    [
        b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY l2 "&lol;&lol;">]><r>&l2;</r>',
    ],
)
def test_doctype_refused_naming_the_url(body):
    with pytest.raises(HostileDocument, match="http://em/api/evil"):
        parse.document(body, "http://em/api/evil")


def test_malformed_names_the_url():
    with pytest.raises(ParseError, match="http://em/api/q") as info:
        parse.document(b"<QueryResult><Entities>", "http://em/api/q")
    assert info.value.retriable


def test_fields_strip_and_empty_is_none(payload):
    root = parse.document(payload("seed_task_session_entity.xml"), "u")
    f = parse.content(root)[0]
    assert f["Reason"] is None
    assert f["State"] == "Completed"
    assert "Links" not in f


def test_links_in_any_attribute_order():
    root = parse.document(
        f'<E {NS}><Links><Link Name="n" Href="/api/x/1" Type="T" Rel="Up"/>'
        f'<Link Rel="Down" Type="L" Href="/api/y"/></Links></E>'.encode(),
        "u",
    )
    assert parse.links(root) == [
        parse.Link("Up", "T", "/api/x/1", "n"),
        parse.Link("Down", "L", "/api/y", None),
    ]


def test_paging_info():
    body = (
        f'<QueryResult {NS}><Entities/><PagingInfo PageNum="2" PageSize="10" PagesCount="3"><Links>'
        f'<Link Rel="First" Href="/api/query?type=X&amp;page=1"/><Link Rel="Next" Href="/api/query?type=X&amp;page=3"/>'
        f"</Links></PagingInfo></QueryResult>"
    ).encode()
    p = parse.paging(parse.document(body, "u"), "u")
    assert p == parse.Paging(2, 3, "/api/query?type=X&page=3")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2025-08-15T20:00:24Z", datetime(2025, 8, 15, 20, 0, 24, tzinfo=UTC)),
        ("2025-08-15T20:00:24.0Z", datetime(2025, 8, 15, 20, 0, 24, tzinfo=UTC)),
        ("2025-08-15T20:00:24.003Z", datetime(2025, 8, 15, 20, 0, 24, 3000, tzinfo=UTC)),
        ("2025-08-15T20:00:24.003406Z", datetime(2025, 8, 15, 20, 0, 24, 3406, tzinfo=UTC)),
        ("2025-08-15T20:00:24.0034069Z", datetime(2025, 8, 15, 20, 0, 24, 3406, tzinfo=UTC)),
        ("2025-08-15T22:00:24+02:00", datetime(2025, 8, 15, 20, 0, 24, tzinfo=UTC)),
    ],
)
def test_utc(text, expected):
    value = parse.utc(text)
    assert value == expected and value.tzinfo is not None and value.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text", ["2025-02-30T00:00:00Z", "yesterday", "2025-08-15 20:00:24", "2025-08-15T20:00:24"]
)
def test_utc_rejects(text):
    with pytest.raises(DataError):
        parse.utc(text, "http://em/x")


def test_integer_and_boolean():
    assert parse.integer("64424509440") == 64424509440
    assert parse.integer(None) is None
    with pytest.raises(DataError):
        parse.integer("12GB")
    with pytest.raises(DataError):
        parse.integer(str(2**63))
    with pytest.raises(DataError):
        parse.integer(str(2**31), bits=32)
    assert parse.boolean("true") is True and parse.boolean("False") is False and parse.boolean(None) is None
    with pytest.raises(DataError):
        parse.boolean("yes")


def test_uid_from_href():
    assert (
        parse.uid_from_href("http://h:9399/api/vmReplicaPoints/623c?format=Entity", "VmReplicaPoint")
        == "urn:veeam:VmReplicaPoint:623c"
    )
    assert parse.uid_from_href("/api/backupServers/ce15/", "BackupServer") == "urn:veeam:BackupServer:ce15"


def test_entities_are_recognised_by_their_type_attribute():
    body = (
        f'<QueryResult {NS}><Entities><BackupServers><BackupServer Type="BackupServer" UID="a"/>'
        f'<Server Type="BackupServer" UID="b"/><BackupServer UID="untyped"/></BackupServers></Entities></QueryResult>'
    ).encode()
    assert [e.get("UID") for e in parse.entities(parse.document(body, "u"), "BackupServer")] == ["a", "b"]
    single = parse.document(f'<BackupServer {NS} Type="BackupServer" UID="c"/>'.encode(), "u")
    assert parse.entities(single, "BackupServer") == [single]


RECORDED = {  # em-samples/README.md: what the product must do with each recorded body
    "query-element-name-not-type.xml": ("ReplicaJobSession", 1),
    "query-empty-entities.xml": ("ReplicaTaskSession", 0),
    "query-empty-list.xml": ("ReplicaTaskSession", 0),
    "query-replica-job-session-waiting-repository.xml": ("ReplicaJobSession", 1),
    "query-task-sessions-v13-extras.xml": ("ReplicaTaskSession", 1),
    "backup-server-v13.xml": ("BackupServer", 1),
}


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_recorded_query_pages_give_their_entities(name, payload):
    type_name, count = RECORDED[name]
    url = "https://em01.example.local:9398/api/query?type=" + type_name
    root = parse.em_document(payload(f"em-samples/{name}"), url)
    assert len(parse.query_entities(root, frozenset({type_name}), url)) == count


@pytest.mark.parametrize(
    "name,found",
    [
        ("querysvc-menu.xml", "<QuerySvc>"),
        ("query-references-page.xml", "<Refs>"),
        ("query-element-name-not-type.xml", "entities of type ReplicaJobSession only"),
    ],
)
def test_recorded_pages_of_the_wrong_shape_are_refused_naming_what_was_found(name, found, payload):
    url = "https://em01.example.local:9398/api/query?type=BackupServer&format=Entities"
    root = parse.em_document(payload(f"em-samples/{name}"), url)
    with pytest.raises(UnexpectedDocument) as info:
        parse.query_entities(root, frozenset({"BackupServer"}), url)
    assert found in str(info.value) and url in str(info.value)
    assert not info.value.retriable


def test_an_error_body_answered_with_200_is_a_retriable_parse_error_naming_ems_message(payload):
    with pytest.raises(ParseError, match="Object reference not set") as info:
        parse.em_document(payload("em-samples/error-500.xml"), "https://em/api/query")
    assert info.value.retriable


def test_offset_variant_is_not_naive():
    tz = timezone(timedelta(hours=-5))
    assert parse.utc("2025-01-01T00:00:00-05:00") == datetime(2025, 1, 1, tzinfo=tz)


EMPTY_SHAPES = {  # em-api.md "Empty results": EM's serializer leaves null lists out
    "no list at all": "",
    "<Entities/>": "<Entities/>",
    "<Entities> with an empty wrapper": "<Entities><BackupServers/></Entities>",
    "<Refs/>": "<Refs/>",
}
PAGING = '<PagingInfo PageNum="1" PageSize="1" PagesCount="1"/>'


@pytest.mark.parametrize("shape", sorted(EMPTY_SHAPES))
def test_a_query_result_with_paging_info_and_no_list_is_an_empty_page_in_either_format(shape):
    url = "https://em/api/query?type=BackupServer"
    root = parse.document(f"<QueryResult {NS}>{EMPTY_SHAPES[shape]}{PAGING}</QueryResult>".encode(), url)
    if shape != "<Refs/>":
        assert parse.query_entities(root, frozenset({"BackupServer"}), url) == []
    if not shape.startswith("<Entities"):
        assert parse.query_refs(root, frozenset({"BackupServer"}), url) == []


def test_a_references_page_gives_its_uids_and_refuses_what_is_not_one(payload):
    url = "https://em01.example.local:9398/api/query?type=BackupServer&format=References"
    page = parse.em_document(payload("em-samples/query-references-page.xml"), url)
    assert parse.query_refs(page, frozenset({"BackupServer"}), url) == [
        "urn:veeam:BackupServer:7445e6ce-0000-4171-b909-000000000001"
    ]
    with pytest.raises(UnexpectedDocument, match="references to BackupServer only"):
        parse.query_refs(page, frozenset({"Job"}), url)
    entities = parse.em_document(payload("em-samples/backup-server-v13.xml"), url)
    with pytest.raises(UnexpectedDocument, match="the Entities format"):
        parse.query_refs(entities, frozenset({"BackupServer"}), url)
    menu = parse.em_document(payload("em-samples/querysvc-menu.xml"), url)
    with pytest.raises(UnexpectedDocument, match="<QuerySvc>"):
        parse.query_refs(menu, frozenset({"BackupServer"}), url)
    bare = parse.document(f"<QueryResult {NS}><Refs/></QueryResult>".encode(), url)
    with pytest.raises(UnexpectedDocument, match="without <PagingInfo>"):
        parse.query_refs(bare, frozenset({"BackupServer"}), url)
