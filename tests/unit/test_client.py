"""etl.client against an in-process transport: logon, token header, paging URLs, 401, retries, link safety."""

import signal
import threading

import httpx
import pytest

from etl import stopping
from etl.client import FIRST_CONTACT_ATTEMPTS, EMClient, RetryPolicy, redact_url
from etl.crawl import Fetcher
from etl.errors import (
    AuthError,
    ConfigError,
    ForeignLink,
    HostileDocument,
    Interrupted,
    NotFound,
    SourceError,
)
from etl.settings import Options

NS = 'xmlns="http://www.veeam.com/ent/v1.0"'
ROOT = (
    f'<EnterpriseManager {NS}><Links><Link Href="http://em01.lab:9399/api/sessionMngr/?v=latest" '
    f'Type="LogonSession" Rel="Create"/></Links></EnterpriseManager>'
).encode()
SESSION = (
    f'<LogonSession {NS} Type="LogonSession" Href="http://em01.lab:9399/api/logonSessions/s1"><Links>'
    f'<Link Href="http://em01.lab:9399/api/query" Type="QueryService" Rel="Down"/>'
    f'<Link Href="http://em01.lab:9399/api/logonSessions/s1" Type="LogonSession" Rel="Delete"/></Links>'
    f"<UserName>demo</UserName><SessionId>s1</SessionId></LogonSession>"
).encode()
SERVER = f'<BackupServer {NS} UID="urn:veeam:BackupServer:1" Name="vbr"/>'.encode()
FAST = RetryPolicy(attempts=4, base=0.001, cap=0.01, total=5)


class FakeEM:
    """Answers like EM; `script` maps a path to a list of (status, body, headers) served in turn."""

    def __init__(self, password="pw", script=None):
        self.password, self.script, self.seen = password, script or {}, []
        self.tokens = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        path = request.url.path
        if path == "/api/" and request.method == "GET":
            return httpx.Response(200, content=ROOT)
        if path == "/api/sessionMngr/" and request.method == "POST":
            if request.headers.get("authorization") != httpx.BasicAuth("demo", self.password)._auth_header:
                return httpx.Response(
                    401,
                    content=f'<Error {NS} Message="bad" StatusCode="401"/>'.encode(),
                    headers={"WWW-Authenticate": "Basic Realm=RestSvc"},
                )
            self.tokens += 1
            return httpx.Response(201, content=SESSION, headers={"x-restsvcsessionid": f"tok{self.tokens}"})
        if path == "/api/logonSessions/s1" and request.method == "DELETE":
            return httpx.Response(204)
        if request.headers.get("X-RestSvcSessionId") != f"tok{self.tokens}":
            return httpx.Response(401, content=f'<Error {NS} Message="expired" StatusCode="401"/>'.encode())
        if path in self.script and self.script[path]:
            status, body, headers = self.script[path].pop(0)
            return httpx.Response(status, content=body, headers=headers)
        return httpx.Response(404, content=f'<Error {NS} Message="nope" StatusCode="404"/>'.encode())


def client(em: FakeEM, **kw) -> EMClient:
    return EMClient(
        "http://127.0.0.1:9399/api", "demo", "pw", transport=httpx.MockTransport(em), retry=FAST, **kw
    )


def fetcher(em: FakeEM, **options) -> Fetcher:
    """A Fetcher of the fake EM: its options (`Options` fields), no worker processes unless asked."""
    options.setdefault("worker_processes", 0)
    return Fetcher(
        "http://127.0.0.1:9399/api",
        "demo",
        "pw",
        transport=httpx.MockTransport(em),
        options=Options(retry=FAST, **options),
    )


def test_logon_uses_advertised_link_and_rebases_em_host():
    em = FakeEM(script={"/api/backupServers/1": [(200, SERVER, {})]})
    with client(em) as c:
        assert c.query_url("BackupServer").startswith("http://127.0.0.1:9399/api/query?type=BackupServer&")
        root = c.document("http://em01.lab:9399/api/backupServers/1")  # EM's own name, connected by IP
        assert root.get("UID") == "urn:veeam:BackupServer:1"
    hosts = {r.url.host for r in em.seen}
    assert hosts == {"127.0.0.1"}
    assert em.seen[-1].method == "DELETE"  # logged off
    assert em.seen[2].headers["X-RestSvcSessionId"] == "tok1"  # case-insensitive header read


def test_bad_credentials():
    with pytest.raises(AuthError, match="refused the logon") as info, client(FakeEM(password="other")):
        pass
    assert "pw" not in str(info.value)


def test_401_relogon_once_and_repeat():
    em = FakeEM(script={"/api/backupServers/1": [(200, SERVER, {})]})
    with client(em) as c:
        em.tokens += 1  # the server forgets our token (idle expiry)
        assert c.document("/api/backupServers/1").get("UID")
        assert em.tokens == 3  # one new logon


def test_retries_503_and_truncated_then_succeeds():
    em = FakeEM(
        script={
            "/api/backupServers/1": [
                (503, b"busy", {"Retry-After": "0"}),
                (200, SERVER[:20], {}),
                (500, b"", {}),
                (200, SERVER, {}),
            ]
        }
    )
    with client(em) as c:
        assert c.document("/api/backupServers/1").get("UID")
        assert c.retries == 3


def test_gives_up_after_bounded_attempts():
    em = FakeEM(script={"/api/backupServers/1": [(503, b"", {})] * 10})
    with client(em) as c, pytest.raises(SourceError, match="giving up after 4 attempts"):
        c.get("/api/backupServers/1")


def test_404_and_other_4xx_are_final():
    em = FakeEM(
        script={"/api/x": [(400, f'<Error {NS} Message="bad filter" StatusCode="400"/>'.encode(), {})]}
    )
    with client(em) as c:
        with pytest.raises(NotFound):
            c.get("/api/backupServers/404")
        with pytest.raises(SourceError, match="bad filter"):
            c.get("/api/x")
        assert c.retries == 0


def test_hostile_document_not_retried():
    evil = b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    em = FakeEM(script={"/api/x": [(200, evil, {})]})
    with client(em) as c, pytest.raises(HostileDocument, match="/api/x"):
        c.document("/api/x")
    assert c.retries == 0


def test_foreign_origin_never_requested():
    em = FakeEM()
    with client(em) as c:
        with pytest.raises(ForeignLink):
            c.get("http://attacker.example/api/backupServers/1")
        assert c.foreign_links == 1
    assert all(r.url.host == "127.0.0.1" for r in em.seen)


def test_behind_a_path_prefixed_proxy_em_hrefs_are_rebased_onto_the_base_path():
    """`--url http://proxy/veeam-em/api`, a proxy forwarding `/veeam-em/api/*` to EM's `/api/*`: EM's
    hrefs (on its own host or on the proxy's, with its own path /api/...) are sent under the
    prefix; an href already under it is kept; links to other origins are still refused."""
    em = FakeEM(script={"/api/backupServers/1": [(200, SERVER, {})] * 3})
    sent: list[str] = []

    def proxy(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        if not request.url.path.startswith("/veeam-em/api/"):
            return httpx.Response(404, content=b"not behind this proxy")
        upstream = request.url.copy_with(path=request.url.path[len("/veeam-em") :])
        return em(httpx.Request(request.method, upstream, headers=request.headers, content=request.content))

    with EMClient(
        "http://127.0.0.1:9399/veeam-em/api", "demo", "pw", transport=httpx.MockTransport(proxy), retry=FAST
    ) as c:
        assert c.query_url("BackupServer").startswith("http://127.0.0.1:9399/veeam-em/api/query?")
        for href in (
            "http://em01.lab:9399/api/backupServers/1",  # EM's host name and path
            "/api/backupServers/1",  # EM's path on the proxy's origin
            "http://127.0.0.1:9399/veeam-em/api/backupServers/1",  # already under the prefix
        ):
            assert c.resolve(href) == "http://127.0.0.1:9399/veeam-em/api/backupServers/1"
            assert c.document(href).get("UID") == "urn:veeam:BackupServer:1"
        with pytest.raises(ForeignLink):
            c.resolve("http://attacker.example/api/backupServers/1")
    assert all(path.startswith("/veeam-em/api/") for path in sent), sent
    assert sent[1] == "/veeam-em/api/sessionMngr/"  # the logon link EM advertised, rebased
    assert sent[-1] == "/veeam-em/api/logonSessions/s1"  # and the logoff


def test_queries_run_at_the_api_base_never_at_the_querysvc_menu():
    """The logon session's QueryService link is `/api/querySvc`, a menu (em-api.md); queries go to
    `<base>/query` whatever the session advertises."""
    menu_session = SESSION.replace(b"/api/query", b"/api/querySvc")
    em = FakeEM()
    em_call = em.__call__

    def answer(request):
        if request.url.path == "/api/sessionMngr/":
            response = em_call(request)
            return httpx.Response(response.status_code, content=menu_session, headers=response.headers)
        return em_call(request)

    with EMClient(
        "http://127.0.0.1:9399/api/", "demo", "pw", transport=httpx.MockTransport(answer), retry=FAST
    ) as c:
        url = httpx.URL(c.query_url("ReplicaJobSession", filter="State!=Stopped"))
    assert url.path == "/api/query" and url.params["type"] == "ReplicaJobSession"
    assert url.params["filter"] == "State!=Stopped"


def test_query_url_has_explicit_page_size_and_encoded_filter():
    with client(FakeEM(), page_size=250) as c:
        url = c.query_url(
            "ReplicaTaskSession",
            filter='CreationTime>="2025-08-15T06:00:00Z"',
            sort_asc="CreationTime",
            page=3,
        )
    parsed = httpx.URL(url)
    assert parsed.params["pageSize"] == "250" and parsed.params["page"] == "3"
    assert parsed.params["filter"] == 'CreationTime>="2025-08-15T06:00:00Z"'
    assert parsed.params["format"] == "Entities" and parsed.params["sortAsc"] == "CreationTime"


def test_repr_and_errors_hide_password():
    c = EMClient("https://em:9398/api", "demo", "hunter22")
    assert "hunter22" not in repr(c)
    with pytest.raises(ConfigError) as info:  # credentials in the URL are refused, never repeated
        EMClient("https://user:secret@em:9398/api", "demo", "hunter22")
    assert "secret" not in str(info.value) and "hunter22" not in str(info.value)
    assert redact_url("https://user:secret@em:9398/api") == "https://em:9398/api"


def test_requests_in_flight_never_exceed_concurrency_whatever_the_threads():
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    lock, in_flight, peak = threading.Lock(), [0], [0]

    class SlowEM(FakeEM):
        def __call__(self, request):
            with lock:
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])
            time.sleep(0.02)
            try:
                return super().__call__(request)
            finally:
                with lock:
                    in_flight[0] -= 1

    em = SlowEM(script={"/api/backupServers/1": [(200, SERVER, {})] * 24})
    with client(em, concurrency=3) as c, ThreadPoolExecutor(8) as pool:
        uids = list(pool.map(lambda _: c.document("/api/backupServers/1").get("UID"), range(24)))
    assert uids == ["urn:veeam:BackupServer:1"] * 24
    assert peak[0] == 3  # eight threads, three requests at a time


def _refused(request: httpx.Request) -> httpx.Response:
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except ConnectionRefusedError as exc:
        raise httpx.ConnectError(str(exc), request=request) from exc


def test_first_contact_that_cannot_connect_fails_after_few_attempts_naming_the_fix():
    calls = []

    def nobody(request):
        calls.append(request)
        return _refused(request)

    patient = RetryPolicy(attempts=20, base=0, cap=0, total=120)  # the budget an answering EM gets
    c = EMClient(
        "https://em01.lab:9399/api", "demo", "pw", transport=httpx.MockTransport(nobody), retry=patient
    )
    with pytest.raises(SourceError) as caught:
        c.__enter__()
    assert len(calls) == FIRST_CONTACT_ATTEMPTS == c.requests
    message = str(caught.value)
    assert message.startswith(
        f"giving up after {FIRST_CONTACT_ATTEMPTS} attempts: cannot connect to em01.lab:9399"
    )
    assert "check the host and port in the URL (--url)" in message and "https://em01.lab:9398/api" in message


def test_an_em_that_has_answered_gets_the_whole_retry_budget():
    """An EM restarted mid-load refuses connections for a while: that is waited out, attempt after
    attempt, because EM answered before."""
    em, down = FakeEM(), {"left": 0}

    def restarting(request):
        if down["left"] > 0:
            down["left"] -= 1
            return _refused(request)
        return em(request)

    em.script["/api/backupServers/1"] = [(200, SERVER, {})]
    patient = RetryPolicy(attempts=20, base=0, cap=0, total=120)
    with EMClient(
        "http://127.0.0.1:9399/api", "demo", "pw", transport=httpx.MockTransport(restarting), retry=patient
    ) as c:
        down["left"] = 8  # more than FIRST_CONTACT_ATTEMPTS
        assert c.document("/api/backupServers/1").get("UID") == "urn:veeam:BackupServer:1"
        assert c.retries == 8


def test_a_stop_request_ends_the_next_request_and_a_retry_wait():
    em = FakeEM(script={"/api/backupServers/1": [(503, b"", {})] * 10})
    slow = RetryPolicy(attempts=10, base=30, cap=30, total=600)  # a wait no test should sit through
    with EMClient(
        "http://127.0.0.1:9399/api", "demo", "pw", transport=httpx.MockTransport(em), retry=slow
    ) as c:
        threading.Timer(0.2, stopping.request, args=(signal.SIGTERM,)).start()
        try:
            with pytest.raises(Interrupted, match="interrupted by SIGTERM"):
                c.get("/api/backupServers/1")  # 503, then a 15-30 s wait the stop cuts short
            asked = len(em.seen)
            with pytest.raises(Interrupted):
                c.get("/api/backupServers/1")
            assert len(em.seen) == asked  # no request went out after the stop
        finally:
            stopping.reset()


def test_a_fresh_token_used_up_by_other_threads_before_the_repeat_is_an_expiry_not_a_refusal():
    """EM expires a token after two requests. Thread A's token expires; A logs on again, but before its
    repeat goes out another thread uses the new token up. The new token worked, so the 401 A gets is an
    expiry: A logs on once more and its request succeeds."""
    import threading

    a_waiting, b_done = threading.Event(), threading.Event()

    class UsedUp(FakeEM):
        def __init__(self):
            super().__init__(script={"/api/backupServers/1": [(200, SERVER, {})] * 20})
            self.uses: dict[str, int] = {}

        def __call__(self, request):
            token = request.headers.get("X-RestSvcSessionId")
            if token and request.url.path == "/api/backupServers/1":
                if threading.current_thread().name == "A" and token == "tok2" and not a_waiting.is_set():
                    a_waiting.set()  # A's repeat: let the other thread use the new token up first
                    b_done.wait(10)
                self.uses[token] = self.uses.get(token, 0) + 1
                if self.uses[token] > 2:
                    return httpx.Response(
                        401, content=f'<Error {NS} Message="expired" StatusCode="401"/>'.encode()
                    )
            return super().__call__(request)

    em = UsedUp()
    errors: list[BaseException] = []
    with client(em) as c:
        c.get("/api/backupServers/1")
        c.get("/api/backupServers/1")  # tok1 used up

        def a():
            try:
                c.get("/api/backupServers/1")
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        thread = threading.Thread(target=a, name="A")
        thread.start()
        assert a_waiting.wait(10)
        c.get("/api/backupServers/1")  # the other thread, with tok2
        c.get("/api/backupServers/1")  # tok2 used up
        b_done.set()
        thread.join(10)
    assert errors == [] and em.tokens == 3
