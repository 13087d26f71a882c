"""The client's session reads the proxy/CA environment once per origin, with requests' answers."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from monetate_ingest.monetate.transport import EnvironmentOnceSession, new_session


class _Counting(requests.Session):
    """Counts the environment look-ups requests itself performs."""

    lookups = 0

    def merge_environment_settings(self, *args: Any, **kwargs: Any) -> Any:
        _Counting.lookups += 1
        return super().merge_environment_settings(*args, **kwargs)


class _Cached(EnvironmentOnceSession, _Counting):
    pass


@pytest.fixture
def proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "monetate.internal")


def test_settings_are_requests_own_and_read_once_per_origin(proxy_env: None) -> None:
    # Given the cached session and plain requests, under HTTPS_PROXY and NO_PROXY
    session, plain = _Cached(), requests.Session()
    _Counting.lookups = 0
    urls = [
        "https://api.monetate.net/api/data/v1/acme/production/data/a/",
        "https://api.monetate.net/api/data/v1/acme/production/data/b/?x=1",
        "https://monetate.internal/data/",
        "https://api.monetate.net/api/data/v1/acme/production/schema/",
    ]
    # When settings are asked for each URL
    got = [session.merge_environment_settings(u, {}, None, None, None) for u in urls]
    # Then they equal requests' own, and requests looked the environment up once per origin
    assert got == [plain.merge_environment_settings(u, {}, None, None, None) for u in urls]
    assert got[0]["proxies"]["https"] == "http://proxy.internal:3128" and got[2]["proxies"] == {}
    assert _Counting.lookups == 2
    # And a caller mutating its copy does not change the next answer
    got[0]["proxies"]["https"] = "http://elsewhere:1"
    assert session.merge_environment_settings(urls[0], {}, None, None, None)["proxies"]["https"] == (
        "http://proxy.internal:3128"
    )
    # And explicit per-call proxies bypass the cache
    explicit = session.merge_environment_settings(urls[0], {"https": "http://p:1"}, None, None, None)
    assert explicit["proxies"]["https"] == "http://p:1" and _Counting.lookups == 3


def test_forget_environment_reads_it_again(proxy_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    session = new_session()
    url = "https://api.monetate.net/data/"
    assert session.merge_environment_settings(url, {}, None, None, None)["proxies"]
    monkeypatch.setenv("NO_PROXY", "api.monetate.net")
    assert session.merge_environment_settings(url, {}, None, None, None)["proxies"]  # still cached
    assert isinstance(session, EnvironmentOnceSession)
    session.forget_environment()
    assert session.merge_environment_settings(url, {}, None, None, None)["proxies"] == {}


def test_direct_post_verifies_tls_as_requests_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an https origin and requests' own CA bundle choice (REQUESTS_CA_BUNDLE unset)
    from monetate_ingest.monetate.auth import TokenAuth
    from monetate_ingest.monetate.direct_post import DirectPost
    from requests.utils import DEFAULT_CA_BUNDLE_PATH

    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)

    class NoTokens:
        def token(self) -> str:
            raise AssertionError("no request is sent")

        def invalidate(self, token: str) -> None:
            pass

    direct = DirectPost(new_session(), TokenAuth(NoTokens()), (3.05, 30.0))
    url = "https://api.monetate.net/api/data/v1/acme/production/data/customers/"
    # When the direct path looks up its pool  Then it verifies certificates against that bundle
    assert direct.usable_for(url)
    pool = direct._pool(url)
    assert pool.scheme == "https" and pool.cert_reqs == "CERT_REQUIRED"
    assert pool.ca_certs == DEFAULT_CA_BUNDLE_PATH
    # And it is the very pool requests itself uses for that origin
    probe = requests.Request("POST", url).prepare()
    adapter = direct.session.get_adapter(url)
    assert adapter.get_connection_with_tls_context(probe, True) is pool
