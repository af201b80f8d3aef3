"""Object storage over the S3 API (AWS S3, MinIO, moto), and the URL policy that keeps
manifest-supplied URLs from reaching into our own network (SSRF)."""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import boto3
import httpcore
import httpx
from botocore.client import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from oracle_core.config import OracleSettings

# Names that reach a cloud's instance metadata service whatever the resolver says.
METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data", "metadata.azure.com"}
MAX_DOWNLOAD = 2 * 1024**3


class StorageError(RuntimeError):
    """A storage operation that failed; the message names the object and the cause."""


class UnsafeUrlError(ValueError):
    """A URL the policy refuses to fetch."""


@dataclass(frozen=True)
class UrlPolicy:
    """Which hosts data URLs may name. By default only public addresses."""

    allow_private: bool = False
    allow_hosts: tuple[str, ...] = ()

    def check(self, url: str) -> str | None:
        """Refuse a URL the policy does not allow; else the address its host was checked at,
        which the connection must use (`pinned_client`), so a resolver that answers
        differently the second time (DNS rebinding) reaches nothing new. None when there is
        nothing to pin (a literal address, or private addresses allowed)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise UnsafeUrlError(f"{url}: only http and https URLs are allowed")
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            raise UnsafeUrlError(f"{url}: no host")
        if parts.username or parts.password:
            raise UnsafeUrlError(f"{url}: credentials in URLs are not allowed")
        if self.allow_hosts and host not in self.allow_hosts:
            raise UnsafeUrlError(f"{url}: host '{host}' is not in the allow-list")
        if self.allow_private:
            return None
        if host in METADATA_HOSTS or host.endswith(".internal"):
            raise UnsafeUrlError(f"{url}: '{host}' is a metadata or internal host")
        found = _addresses(host, parts.port or (443 if parts.scheme == "https" else 80))
        for _, address in found:
            if not address.is_global or address.is_multicast:
                raise UnsafeUrlError(
                    f"{url}: '{host}' resolves to {address}, a loopback, private, link-local "
                    "or reserved address"
                )
        literal = found[0][0] == host.strip("[]")
        return None if literal else found[0][0]


NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _unwrap(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The IPv4 address an IPv6 one carries (mapped, IPv4-compatible, NAT64, 6to4), which is
    where a connection to it may end up."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address in NAT64 or (int(address) >> 32 == 0 and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


Resolved = tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address]


def _addresses(host: str, port: int) -> list[Resolved]:
    """(the address to connect to, the address it reaches) for each address of `host`."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
        return [(host.strip("[]"), _unwrap(literal))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise UnsafeUrlError(f"host '{host}' does not resolve: {exc}") from None
    found = []
    for info in infos:
        found.append((str(info[4][0]), _unwrap(ipaddress.ip_address(info[4][0]))))
    return found


DEFAULT_HOSTS = {"AWS": "https://s3.amazonaws.com", "GCS": "https://storage.googleapis.com"}
# Virtual-hosted bucket names: the bucket is the host's first labels (dots allowed).
VIRTUAL_HOSTED = (
    (
        re.compile(
            r"(?P<bucket>[a-z0-9][a-z0-9.\-]*)\.s3[.-](?P<region>[a-z0-9-]+)\.amazonaws\.com"
        ),
        "AWS",
        "{scheme}://s3.{region}.amazonaws.com",
    ),
    (
        re.compile(r"(?P<bucket>[a-z0-9][a-z0-9.\-]*)\.s3\.amazonaws\.com"),
        "AWS",
        "{scheme}://s3.amazonaws.com",
    ),
    (
        re.compile(r"(?P<bucket>[a-z0-9][a-z0-9._\-]*)\.storage\.googleapis\.com"),
        "GCS",
        "{scheme}://storage.googleapis.com",
    ),
)


@dataclass(frozen=True)
class BucketUrl:
    """A manifest's bucket object: `{provider, host_url, bucket_name, path}`."""

    provider: str
    host_url: str
    bucket_name: str
    path: str = ""

    @classmethod
    def parse(cls, value: str | Mapping[str, Any]) -> BucketUrl:
        """A bucket object, or a URL as HUMAN's job launcher and oracles write them:
        virtual-hosted AWS (`https://B.s3[.-]REGION.amazonaws.com/path`) and GCS
        (`https://B.storage.googleapis.com/path`), or path style on any host
        (`scheme://host[:port]/bucket/path`: MinIO, S3 regional endpoints, GCS)."""
        if isinstance(value, Mapping):
            provider = str(value.get("provider") or "").upper()
            if provider not in ("AWS", "GCS"):
                raise ValueError(f"provider must be AWS or GCS, not '{value.get('provider')}'")
            host = str(value.get("host_url") or DEFAULT_HOSTS[provider])
            if not value.get("bucket_name"):
                raise ValueError("bucket object lacks bucket_name")
            return cls(
                provider,
                host.rstrip("/"),
                str(value["bucket_name"]),
                str(value.get("path") or "").strip("/"),
            )
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"'{value}' is not a bucket URL (scheme://host/bucket/path)")
        host = parts.hostname.lower()
        path = parts.path.strip("/")
        for pattern, provider, endpoint in VIRTUAL_HOSTED:
            hosted = pattern.fullmatch(host)
            if hosted:
                region = hosted.groupdict().get("region")
                return cls(
                    provider,
                    endpoint.format(scheme=parts.scheme, region=region),
                    hosted.group("bucket"),
                    path,
                )
        bucket, _, rest = path.partition("/")
        if not bucket:
            raise ValueError(f"'{value}' names no bucket (scheme://host/bucket/path)")
        provider = "GCS" if host == "storage.googleapis.com" else "AWS"
        return cls(provider, f"{parts.scheme}://{parts.netloc}", bucket, rest.strip("/"))

    @property
    def url(self) -> str:
        return f"{self.host_url}/{self.bucket_name}" + (f"/{self.path}" if self.path else "")

    def key(self, name: str) -> str:
        return f"{self.path}/{name}" if self.path else name


class ObjectStorage:
    """One S3 endpoint. Path-style addressing, so MinIO and moto work unchanged."""

    def __init__(
        self,
        endpoint_url: str | None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
        policy: UrlPolicy | None = None,
        pin: str | None = None,
    ) -> None:
        """`pin`: the address the URL policy checked the endpoint's host at; every
        connection to the endpoint goes there (TLS still verifies the host's name)."""
        self.endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None
        self.policy = policy or UrlPolicy()
        signed = access_key is not None
        config = Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 5, "mode": "standard"},
            **({} if signed else {"signature_version": _unsigned()}),
        )
        self._s3 = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
            config=config,
        )
        if pin is not None and self.endpoint_url:
            _pin_connections(self._s3, urlsplit(self.endpoint_url).hostname or "", pin)

    @classmethod
    def for_bucket(cls, bucket: BucketUrl, policy: UrlPolicy) -> ObjectStorage:
        """Anonymous access to a requester's (public) bucket, after the URL policy allows it,
        connected to the address the policy checked."""
        return cls(bucket.host_url, policy=policy, pin=policy.check(bucket.host_url))

    def public_url(self, bucket: str, key: str) -> str:
        base = self.endpoint_url or "https://s3.amazonaws.com"
        return f"{base}/{bucket}/{quote(key)}"

    def presigned_url(self, bucket: str, key: str, expires_s: int = 7 * 24 * 3600) -> str:
        """A GET URL a peer can read without our keys (SigV4 allows at most seven days)."""
        url: str = self._call(
            lambda: self._s3.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_s
            ),
            f"sign a URL for s3://{bucket}/{key}",
        )
        return url

    def ensure_bucket(self, bucket: str, public_read: bool = False, listable: bool = True) -> None:
        """The bucket, made if missing; `public_read` lets anyone GET its objects (and list
        them, unless `listable` is False)."""
        try:
            self._s3.head_bucket(Bucket=bucket)
        except ClientError:
            self._call(lambda: self._s3.create_bucket(Bucket=bucket), f"create bucket {bucket}")
        if public_read:
            import json

            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": ["s3:GetObject", "s3:ListBucket"]
                        if listable
                        else ["s3:GetObject"],
                        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
                        if listable
                        else [f"arn:aws:s3:::{bucket}/*"],
                    }
                ],
            }
            self._call(
                lambda: self._s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy)),
                f"make {bucket} public",
            )

    def put(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> str:
        self._call(
            lambda: self._s3.put_object(
                Bucket=bucket, Key=key, Body=data, ContentType=content_type
            ),
            f"upload s3://{bucket}/{key}",
        )
        return self.public_url(bucket, key)

    def get(self, bucket: str, key: str, max_bytes: int = MAX_DOWNLOAD) -> bytes:
        def read() -> bytes:
            obj = self._s3.get_object(Bucket=bucket, Key=key)
            if obj["ContentLength"] > max_bytes:
                raise StorageError(
                    f"s3://{bucket}/{key} is {obj['ContentLength']} bytes, over {max_bytes}"
                )
            data: bytes = obj["Body"].read()
            return data

        return self._call(read, f"download s3://{bucket}/{key}")

    def download(self, bucket: str, key: str, path: Path, max_bytes: int = MAX_DOWNLOAD) -> Path:
        """An object written to `path` in pieces, never whole in memory; refused past
        `max_bytes` (as declared, and as it arrives)."""

        def read() -> Path:
            obj = self._s3.get_object(Bucket=bucket, Key=key)
            if obj["ContentLength"] > max_bytes:
                raise StorageError(
                    f"s3://{bucket}/{key} is {obj['ContentLength']} bytes, over {max_bytes}"
                )
            size = 0
            with path.open("wb") as out:
                for chunk in obj["Body"].iter_chunks(1024 * 1024):
                    size += len(chunk)
                    if size > max_bytes:
                        raise StorageError(f"s3://{bucket}/{key} is over {max_bytes} bytes")
                    out.write(chunk)
            return path

        done: Path = self._call(read, f"download s3://{bucket}/{key}")
        return done

    def get_range(self, bucket: str, key: str, first: int, last: int) -> tuple[bytes, int]:
        """Bytes `first..last` (inclusive, clamped to the object) and the object's size, so a
        large clip is streamed in pieces; `first` past the end is a StorageError."""

        def read() -> tuple[bytes, int]:
            obj = self._s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={first}-{last}")
            total = int(str(obj.get("ContentRange", "")).rpartition("/")[2] or obj["ContentLength"])
            data: bytes = obj["Body"].read()
            return data, total

        got: tuple[bytes, int] = self._call(read, f"read s3://{bucket}/{key} from byte {first}")
        return got

    def list(self, bucket: str, prefix: str = "") -> Iterator[tuple[str, int]]:
        """(key, size) of every object under `prefix`."""
        paginator = self._s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"], int(item["Size"])
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot list s3://{bucket}/{prefix}: {_reason(exc)}") from None

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        keys = [k for k, _ in self.list(bucket, prefix)]
        for i in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[i : i + 1000]]
            self._call(
                lambda c=chunk: self._s3.delete_objects(Bucket=bucket, Delete={"Objects": c}),
                f"delete s3://{bucket}/{prefix}",
            )
        return len(keys)

    def _call(self, fn: Any, what: str) -> Any:
        try:
            return fn()
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot {what}: {_reason(exc)}") from None


def _pin_connections(client: Any, host: str, address: str) -> None:
    """Make every connection `client` (boto3) opens to `host` go to `address`, and refuse
    any other host. The name is swapped only for the dial: the Host header, SNI and the
    certificate check keep the real name. (botocore has no public hook for this: its
    urllib3 pools' connection class is replaced.)"""
    host = host.lower().rstrip(".")

    def pinned(connection: Any) -> Any:
        def _new_conn(self: Any) -> Any:
            named = self._dns_host
            if named.lower().rstrip(".") != host:
                raise UnsafeUrlError(f"'{named}' is not the endpoint the URL policy checked")
            self._dns_host = address
            try:
                return connection._new_conn(self)
            finally:
                self._dns_host = named

        return type(f"Pinned{connection.__name__}", (connection,), {"_new_conn": _new_conn})

    session = client._endpoint.http_session
    pools = {
        scheme: type(
            f"Pinned{pool.__name__}", (pool,), {"ConnectionCls": pinned(pool.ConnectionCls)}
        )
        for scheme, pool in session._pool_classes_by_scheme.items()
    }
    session._pool_classes_by_scheme = pools
    session._manager.pool_classes_by_scheme = pools


def _unsigned() -> Any:
    from botocore import UNSIGNED

    return UNSIGNED


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'error')}: {err.get('Message', '')}".strip(": ")
    return str(exc)


CONNECT_RETRIES_S = (1.0, 2.0, 4.0)


def fetch_url(
    url: str, policy: UrlPolicy, max_bytes: int = 64 * 1024**2, timeout_s: float = 30
) -> bytes:
    """GET a plain URL after the policy allows it: redirects are re-checked, the size is
    capped while it streams, and `timeout_s` is the whole fetch's deadline (a host that
    trickles a byte at a time is cut off). A refused or failed connection is tried again
    after 1, 2 and 4 s within the deadline; then StorageError says why."""
    deadline = time.monotonic() + timeout_s
    waits = list(CONNECT_RETRIES_S)
    redirects = 0
    while True:
        pin = policy.check(url)
        try:
            return _fetch_once(url, max_bytes, deadline, pin)
        except _Redirect as moved:
            redirects += 1
            if redirects > 5:
                raise StorageError(f"{url}: too many redirects") from None
            url = moved.url
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
            wait = waits.pop(0) if waits else None
            if wait is None or time.monotonic() + wait >= deadline:
                raise StorageError(f"GET {url}: cannot connect ({exc})") from None
            time.sleep(wait)
        except httpx.HTTPError as exc:
            raise StorageError(f"GET {url}: {type(exc).__name__}: {exc}") from None


class _Redirect(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


def pinned_client(url: str, pin: str | None, timeout: float) -> httpx.Client:
    """An httpx client that connects `url`'s host to `pin` (the address the URL policy
    checked) while TLS still verifies the host's name."""
    if pin is None:
        return httpx.Client(timeout=timeout, follow_redirects=False)
    # No proxy from the environment: a proxy would resolve the name again itself.
    host = (urlsplit(url).hostname or "").lower()
    transport = httpx.HTTPTransport()
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(), network_backend=_PinnedBackend({host: pin})
    )
    return httpx.Client(
        timeout=timeout, follow_redirects=False, transport=transport, trust_env=False
    )


class _PinnedBackend(httpcore.NetworkBackend):
    """httpcore's network backend, with the names in `pins` connected to their address."""

    def __init__(self, pins: dict[str, str]) -> None:
        self._backend = httpcore.SyncBackend()
        self._pins = pins

    def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        return self._backend.connect_tcp(self._pins.get(host.lower(), host), port, *args, **kwargs)

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> Any:
        raise UnsafeUrlError("unix sockets are never reached")

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _fetch_once(url: str, max_bytes: int, deadline: float, pin: str | None) -> bytes:
    left = deadline - time.monotonic()
    if left <= 0:
        raise StorageError(f"GET {url}: no answer within the deadline")
    with (
        pinned_client(url, pin, timeout=min(left, 10.0)) as client,
        client.stream("GET", url) as reply,
    ):
        if reply.is_redirect:
            raise _Redirect(str(reply.next_request.url) if reply.next_request else "")
        if not reply.is_success:
            raise StorageError(f"GET {url} answered {reply.status_code}")
        chunks, size = [], 0
        for chunk in reply.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise StorageError(f"{url} is larger than {max_bytes} bytes")
            if time.monotonic() > deadline:
                raise StorageError(f"GET {url}: not received within the deadline")
            chunks.append(chunk)
        return b"".join(chunks)


def storage_from_settings(settings: OracleSettings) -> ObjectStorage:
    """The oracle's (or requester's) own bucket endpoint, as configured."""
    secret = settings.storage_secret_key
    return ObjectStorage(
        settings.storage_endpoint_url,
        settings.storage_access_key.get_secret_value() if settings.storage_access_key else None,
        secret.get_secret_value() if secret else None,
        settings.storage_region,
        settings.url_policy(),
    )
