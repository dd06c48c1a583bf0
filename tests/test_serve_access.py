"""Only its user drives `charrnn serve` (issue 31, fault 5): on loopback, a foreign Host is
refused (DNS rebinding); a page of another origin is refused and gets no CORS unless
--cors-origin names it; a POST must be JSON (a page's text/plain form post is refused); with an
API key, /v1/ needs `Authorization: Bearer KEY`; a non-loopback address needs a key or
--insecure. The server's own page and the `openai` client still work."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import spawn
from tests.servetools import is_openai_error, server, tiny_home

BODY = json.dumps({"prompt": "the ", "max_tokens": 5}).encode()
KEY = "sesame"
BEARER = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tiny_home(tmp_path_factory.mktemp("access"))


@pytest.fixture(scope="module")
def srv(home):
    options = ["--api-key", KEY, "--cors-origin", "http://app.example",
               "--allowed-host", "proxy.example"]  # fmt: skip
    with server(home, *options) as s:
        yield s


@pytest.mark.parametrize("path", ["/", "/health", "/v1/models"])
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example"])
def test_a_foreign_host_is_refused_on_loopback(srv, path, host):
    status, _, raw = srv.request("GET", path, Host=host, **BEARER)
    assert status == 403 and is_openai_error(raw)
    assert json.loads(raw)["error"]["code"] == "host_not_allowed"
    status, _, raw = srv.request("POST", "/v1/completions", BODY, Host=host, **BEARER)
    assert status == 403


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST:1", "127.0.0.1", "127.3.2.1:9",
             pytest.param("[::1]:80", id="ipv6-loopback:80"), "proxy.example",
             "proxy.example:8443"],
)  # fmt: skip
def test_loopback_and_allowed_hosts_are_served(srv, host):
    status, _, raw = srv.request("POST", "/v1/completions", BODY, Host=host, **BEARER)
    assert status == 200, raw


NOT_JSON = ["text/plain", "", "application/x-www-form-urlencoded", "multipart/form-data; b=x",
            "application/jsonx"]  # fmt: skip


@pytest.mark.parametrize("kind", NOT_JSON)
def test_a_post_that_is_not_json_is_a_415(srv, kind):
    status, _, raw = srv.request("POST", "/v1/completions", BODY, Content_Type=kind, **BEARER)
    assert status == 415 and is_openai_error(raw)
    assert json.loads(raw)["error"]["code"] == "unsupported_media_type"


def test_json_with_a_charset_is_served(srv):
    kind = "Application/JSON; charset=utf-8"
    assert srv.request("POST", "/v1/completions", BODY, Content_Type=kind, **BEARER)[0] == 200


def test_a_cross_origin_page_is_refused_without_cors(srv):
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{srv.port + 1}"):
        status, headers, raw = srv.request("POST", "/v1/completions", BODY, Origin=origin,
                                           **BEARER)  # fmt: skip
        assert status == 403 and is_openai_error(raw), origin
        assert not any(k.startswith("access-control") for k in headers)
        status, headers, _ = srv.request("OPTIONS", "/v1/completions", None, Origin=origin,
                                         Access_Control_Request_Method="POST")  # fmt: skip
        assert status == 403 and "access-control-allow-origin" not in headers


def test_the_origin_named_by_cors_origin_gets_cors_and_its_preflight(srv):
    app = "http://app.example"
    status, headers, _ = srv.request(
        "OPTIONS", "/v1/completions", None, Origin=app, Access_Control_Request_Method="POST",
        Access_Control_Request_Headers="authorization, content-type", Content_Type="",
    )  # fmt: skip
    assert status == 204 and headers["access-control-allow-origin"] == app
    assert "POST" in headers["access-control-allow-methods"]
    assert "Authorization" in headers["access-control-allow-headers"]
    status, headers, _ = srv.request("POST", "/v1/completions", BODY, Origin=app, **BEARER)
    assert status == 200 and headers["access-control-allow-origin"] == app
    status, headers, _ = srv.request("POST", "/v1/completions", BODY, **BEARER)  # no Origin
    assert status == 200 and "access-control-allow-origin" not in headers


@pytest.mark.parametrize(
    "auth", ["", "Bearer", "Bearer wrong", f"Basic {KEY}", f"Bearer {KEY}x", f"Bearer {KEY[:-1]}"]
)
def test_without_the_api_key_v1_is_a_401(srv, auth):
    for method, path, body in (("GET", "/v1/models", None), ("POST", "/v1/completions", BODY)):
        status, headers, raw = srv.request(method, path, body, Authorization=auth)
        assert status == 401 and is_openai_error(raw), (auth, path)
        assert json.loads(raw)["error"]["code"] == "invalid_api_key"
        assert headers.get("www-authenticate") == "Bearer"


def test_with_the_api_key_v1_is_served_and_health_and_the_page_need_none(srv):
    status, _, raw = srv.request("GET", "/v1/models", None, Authorization=f"bearer {KEY}")
    assert status == 200 and json.loads(raw)["data"][0]["id"] == "t"
    assert srv.request("GET", "/health", None)[0] == 200
    assert srv.request("GET", "/", None)[0] == 200


def test_the_page_works_from_a_browser_on_loopback(srv):
    """What a browser sends for the page's own requests: its origin, Host, JSON and the key
    typed into the page."""
    origin = f"http://127.0.0.1:{srv.port}"
    status, _, raw = srv.request("GET", "/", None, Content_Type="")
    page = raw.decode()
    assert status == 200 and '"Content-Type": "application/json"' in page
    assert 'id="key"' in page and '"Bearer "' in page
    status, _, raw = srv.request("GET", "/v1/models", None, Content_Type="", **BEARER)
    assert status == 200
    body = json.dumps({"model": "t", "prompt": "the ", "stream": True, "echo": True,
                       "max_tokens": 20, "temperature": 0.8}).encode()  # fmt: skip
    for host in (f"127.0.0.1:{srv.port}", f"localhost:{srv.port}"):
        origin = f"http://{host}"
        status, headers, raw = srv.request("POST", "/v1/completions", body, Host=host,
                                           Origin=origin, **BEARER)  # fmt: skip
        assert status == 200 and raw.decode().rstrip().endswith("data: [DONE]")
        assert "access-control-allow-origin" not in headers  # same origin: no CORS needed


def test_the_openai_client_with_the_key(srv):
    openai = pytest.importorskip("openai")
    url = f"http://127.0.0.1:{srv.port}/v1"
    client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0, timeout=60)
    r = client.completions.create(model="t", prompt="the ", max_tokens=12, temperature=0)
    assert len(r.choices[0].text) == 12
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=url, api_key="nope", max_retries=0).models.list()


def test_a_non_loopback_address_needs_a_key_or_insecure(cli, home, monkeypatch):
    monkeypatch.setenv("CHARRNN_HOME", str(home))
    r = cli("serve", "--run", "t", "--host", "0.0.0.0", "--port", "0")
    assert r.code == 2 and "--api-key" in r.err and "--insecure" in r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    r = cli("serve", "--run", "t", "--api-key", " ", "--port", "0")
    assert r.code == 2 and "empty" in r.err


@pytest.mark.parametrize("how", ["insecure", "env"])
def test_a_non_loopback_address_serves_with_insecure_or_a_key_from_the_env(home, how):
    extra, env = (["--insecure"], {}) if how == "insecure" else ([], {"CHARRNN_API_KEY": KEY})
    with server(home, "--host", "0.0.0.0", *extra, env=env) as s:
        # not on loopback: any Host is answered (the key, when set, is the guard)
        status, _, _ = s.request("GET", "/v1/models", None, Host="box.lan:8000")
        assert status == (200 if how == "insecure" else 401)
        if how == "env":
            assert s.request("GET", "/v1/models", None, Host="box.lan", **BEARER)[0] == 200


def test_help_names_the_access_options(tmp_path):
    proc = spawn("serve", "--help", env={"COLUMNS": "200"})
    out, _ = proc.communicate(timeout=60)
    for option in ("--api-key", "--allowed-host", "--cors-origin", "--insecure"):
        assert option in out
    assert re.search(r"CHARRNN_API_KEY", out)
