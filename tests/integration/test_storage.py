"""Storage through the S3 API (moto's server on loopback) and the SSRF policy for URLs."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import RedirectResponse, Response

from oracle_core.storage import (
    BucketUrl,
    ObjectStorage,
    StorageError,
    UnsafeUrlError,
    UrlPolicy,
    fetch_url,
)
from tests.integration.conftest import serve

pytestmark = pytest.mark.integration


@pytest.fixture
def storage(s3_url: str) -> ObjectStorage:
    return ObjectStorage(s3_url, "sandbox", "sandbox-secret", policy=UrlPolicy(allow_private=True))


def test_objects_round_trip_and_list_and_delete(storage: ObjectStorage) -> None:
    storage.ensure_bucket("results")
    storage.ensure_bucket("results")  # idempotent
    url = storage.put("results", "0xabc@1338/a.json", b'{"a": 1}', "application/json")
    assert url.endswith("/results/0xabc%401338/a.json")
    storage.put("results", "0xabc@1338/b.bin", b"\x00" * 10)
    storage.put("results", "other/c.bin", b"c")
    assert storage.get("results", "0xabc@1338/a.json") == b'{"a": 1}'
    assert sorted(storage.list("results", "0xabc@1338/")) == [
        ("0xabc@1338/a.json", 8),
        ("0xabc@1338/b.bin", 10),
    ]
    assert storage.delete_prefix("results", "0xabc@1338/") == 2
    assert list(storage.list("results", "0xabc@1338/")) == []
    assert [k for k, _ in storage.list("results")] == ["other/c.bin"]


def test_missing_objects_and_buckets_are_named_in_errors(storage: ObjectStorage) -> None:
    storage.ensure_bucket("data")
    with pytest.raises(StorageError, match=r"download s3://data/nope.wav: NoSuchKey"):
        storage.get("data", "nope.wav")
    with pytest.raises(StorageError, match="cannot list s3://no-such-bucket"):
        list(storage.list("no-such-bucket"))


def test_oversized_objects_are_refused(storage: ObjectStorage) -> None:
    storage.ensure_bucket("data")
    storage.put("data", "big.bin", b"x" * 1000)
    with pytest.raises(StorageError, match="over 100"):
        storage.get("data", "big.bin", max_bytes=100)


def test_a_public_requester_bucket_reads_anonymously(storage: ObjectStorage, s3_url: str) -> None:
    storage.ensure_bucket("requester", public_read=True)
    storage.put("requester", "job/audio/one.wav", b"RIFF")
    bucket = BucketUrl.parse(
        {"provider": "aws", "host_url": s3_url, "bucket_name": "requester", "path": "job/audio"}
    )
    anonymous = ObjectStorage.for_bucket(bucket, UrlPolicy(allow_private=True))
    assert [k for k, _ in anonymous.list(bucket.bucket_name, bucket.path)] == ["job/audio/one.wav"]
    assert anonymous.get("requester", bucket.key("one.wav")) == b"RIFF"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/bucket",
        "http://localhost/x",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://2130706433/x",  # 127.0.0.1 written as one number
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://10.1.2.3/x",
        "http://192.168.0.1/x",
        "http://172.16.5.4/x",
        "http://0.0.0.0/x",
        "file:///etc/passwd",
        "gopher://example.com/x",
        "http://user:pw@93.184.216.34/x",
    ],
)
def test_the_default_policy_blocks_internal_and_odd_urls(url: str) -> None:
    with pytest.raises(UnsafeUrlError):
        UrlPolicy().check(url)


def test_public_addresses_pass_and_allow_lists_restrict() -> None:
    UrlPolicy().check("https://93.184.216.34/bucket/data")
    with pytest.raises(UnsafeUrlError, match="not in the allow-list"):
        UrlPolicy(allow_hosts=("s3.amazonaws.com",)).check("https://93.184.216.34/x")
    UrlPolicy(allow_private=True).check("http://127.0.0.1:9000/bucket")


def test_bucket_objects_and_urls_parse() -> None:
    assert BucketUrl.parse("http://127.0.0.1:9000/data/job/7/") == BucketUrl(
        "AWS", "http://127.0.0.1:9000", "data", "job/7"
    )
    with pytest.raises(ValueError, match="lacks bucket_name"):
        BucketUrl.parse({"provider": "AWS", "host_url": "http://h"})
    with pytest.raises(ValueError, match="AWS or GCS"):
        BucketUrl.parse({"provider": "FTP", "host_url": "http://h", "bucket_name": "b"})


def test_redirects_are_checked_again() -> None:
    app = FastAPI()

    @app.get("/ok")
    def ok() -> Response:
        return Response(b"manifest")

    @app.get("/hop")
    def hop() -> RedirectResponse:
        return RedirectResponse("http://localhost:1/secret")

    with serve(app) as base:
        policy = UrlPolicy(allow_private=True, allow_hosts=("127.0.0.1",))
        assert fetch_url(f"{base}/ok", policy) == b"manifest"
        with pytest.raises(UnsafeUrlError, match="'localhost' is not in the allow-list"):
            fetch_url(f"{base}/hop", policy)


def test_a_host_that_trickles_is_cut_off_at_the_deadline() -> None:
    """The whole fetch has one deadline: a byte every half second never ends it late."""
    import socket
    import threading
    import time

    from oracle_core.storage import StorageError, UrlPolicy, fetch_url

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def trickle() -> None:
        conn, _ = server.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(20):
            time.sleep(0.5)
            try:
                conn.sendall(b"x")
            except OSError:
                break
        conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(StorageError, match="deadline"):
        fetch_url(f"http://127.0.0.1:{port}/m.json", UrlPolicy(allow_private=True), timeout_s=2)
    assert time.monotonic() - started < 4
    server.close()


def test_a_refused_connection_is_tried_again_then_reported() -> None:
    import socket
    import time

    from oracle_core.storage import StorageError, UrlPolicy, fetch_url

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(StorageError, match="cannot connect"):
        fetch_url(f"http://127.0.0.1:{port}/m.json", UrlPolicy(allow_private=True), timeout_s=5)
    assert 2.5 < time.monotonic() - started < 6  # tried after 1 s and 2 s, then reported


def test_the_checked_address_is_the_one_connected_to(monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the policy resolves and checks a host, and the connection goes to that
    address, whatever the resolver answers afterwards. (Loopback only: the "public" answer
    is never dialled.)"""
    import socket

    from oracle_core.storage import UrlPolicy, pinned_client

    real = socket.getaddrinfo

    def resolver(host: str, *args: object, **kwargs: object) -> list:  # type: ignore[type-arg]
        if host == "rebind.test":
            return real("127.0.0.2", *args, **kwargs)  # nothing listens there  # type: ignore[arg-type]
        if host == "public.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80))]
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    assert UrlPolicy().check("http://public.test/m.json") == "93.184.216.34"
    app = FastAPI()
    app.get("/m.json")(lambda: {"ok": True})
    with serve(app) as url:
        port = url.rsplit(":", 1)[1]
        target = f"http://rebind.test:{port}/m.json"
        with pinned_client(target, "127.0.0.1", timeout=5) as client:
            assert client.get(target).json() == {"ok": True}  # the pinned address
        with pinned_client(target, None, timeout=2) as client, pytest.raises(httpx.ConnectError):
            client.get(target)  # what the resolver says now: nothing there


def test_s3_reads_of_a_requester_bucket_go_to_the_checked_address(
    storage: ObjectStorage, s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for boto3: a bucket whose host the policy checked at one address is read
    from that address, whatever the resolver answers when boto3 connects; and the pinned
    client reaches no other host."""
    import socket

    storage.ensure_bucket("pinned", public_read=True)
    storage.put("pinned", "job/a.txt", b"from the checked address")
    real = socket.getaddrinfo

    def resolver(host: str, *args: object, **kwargs: object) -> list:  # type: ignore[type-arg]
        if host == "localhost":  # a name moto serves path-style; it rebinds here
            return real("127.0.0.2", *args, **kwargs)  # nothing listens there  # type: ignore[arg-type]
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    port = s3_url.rsplit(":", 1)[1]
    checked = UrlPolicy(allow_private=True)
    monkeypatch.setattr(UrlPolicy, "check", lambda self, url: "127.0.0.1")  # checked there
    bucket = BucketUrl.parse(
        {"provider": "aws", "host_url": f"http://localhost:{port}", "bucket_name": "pinned"}
    )
    pinned = ObjectStorage.for_bucket(bucket, checked)
    assert pinned.get("pinned", "job/a.txt") == b"from the checked address"
    assert [name for name, _ in pinned.list("pinned", "job/")] == ["job/a.txt"]
    unpinned = ObjectStorage(f"http://localhost:{port}", policy=checked)
    with pytest.raises(StorageError):
        unpinned.get("pinned", "job/a.txt")  # where the resolver points now: nothing
    elsewhere = ObjectStorage(f"http://127.0.0.1:{port}", policy=checked, pin="127.0.0.1")
    elsewhere._s3.meta.events.register(  # a request rewritten to another host is refused
        "before-send.s3",
        lambda request, **_: setattr(request, "url", request.url.replace("127.0.0.1", "127.0.0.3")),
    )
    with pytest.raises(StorageError, match="not the endpoint"):
        elsewhere.get("pinned", "job/a.txt")
