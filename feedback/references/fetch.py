"""Fetching a referenced image's bytes: bounded in size and time, and refusing what it must.

- **http(s)**: the host must be allowed (``IMAGE_REF_HOSTS``) at every hop; its addresses are
  resolved here and each must be public unless it lies in ``IMAGE_REF_PRIVATE_NETWORKS`` (a name
  that resolves to a private or loopback address is refused: no SSRF through DNS), and the
  connection goes to the address checked (a second lookup cannot move it). Redirects are followed
  by hand, at most ``MAX_REDIRECTS``, each target checked like the first.
- **s3**: ``get_object`` with the configured endpoint, region and the environment's credentials.
- **path**: a file under the read-only root, after symbolic links are resolved.

Every fetch reads at most ``IMAGE_MAX_BYTES`` (a declared length past it is refused unread),
with connect and read timeouts and a deadline for the whole body. Failures are ``FetchFailed``:
``transient`` ones (timeouts, refused connections, 429 and 5xx answers, throttling) are retried
with backoff by the service; the others end the reference with their reason.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3
from django.conf import settings
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import SSLError, TimeoutError

from .refs import DEFAULT_PORTS, Reference, RefRefused, check_host_allowed, parse_reference

MAX_REDIRECTS = 3
BLOCK = 1 << 16
USER_AGENT = "feedback-annotator-image-fetch/1"


class FetchFailed(Exception):
    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


def _too_large(size: int, limit: int) -> FetchFailed:
    return FetchFailed(
        f"{size:,} bytes or more, over the limit of {limit:,} (ANNOTATOR_IMAGE_MAX_BYTES)", transient=False
    )


def fetch(ref: Reference) -> bytes:
    if ref.kind == "http":
        return fetch_http(ref.uri)
    if ref.kind == "s3":
        return fetch_s3(ref.bucket, ref.key)
    return fetch_path(ref.path)


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.at:
            raise FetchFailed(
                f"the whole transfer took longer than {self.seconds:g} s (ANNOTATOR_IMAGE_FETCH_TOTAL_TIMEOUT)",
                transient=True,
            )


def read_bounded(read, limit: int, deadline: Deadline) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        deadline.check()
        block = read(min(BLOCK, limit + 1 - total))
        if not block:
            return b"".join(chunks)
        chunks.append(block)
        total += len(block)
        if total > limit:
            raise _too_large(total, limit)


# --------------------------------------------------------------------------------------------
# http(s)


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n, strict=False) for n in settings.IMAGE_REF_PRIVATE_NETWORKS]


def resolve_checked(host: str, port: int) -> str:
    """The address to connect to: every address of the host must be public or allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        transient = exc.errno in (socket.EAI_AGAIN,)
        raise FetchFailed(f"the host {host} cannot be resolved ({exc.strerror})", transient=transient) from None
    networks = allowed_networks()
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global and not any(address in net for net in networks):
            raise FetchFailed(
                f"the host {host} resolves to {address}, a private, loopback or reserved address "
                "(ANNOTATOR_IMAGE_REF_PRIVATE_NETWORKS allows such networks)",
                transient=False,
            )
        addresses.append(str(address))
    if not addresses:
        raise FetchFailed(f"the host {host} has no address", transient=False)
    return addresses[0]


def _pool(scheme: str, address: str, host: str, port: int) -> urllib3.HTTPConnectionPool:
    timeout = urllib3.Timeout(connect=settings.IMAGE_FETCH_CONNECT_TIMEOUT, read=settings.IMAGE_FETCH_READ_TIMEOUT)
    if scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address,
            port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            server_hostname=host,
            assert_hostname=host,
        )
    return urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False, maxsize=1)


def fetch_http(uri: str) -> bytes:
    limit = settings.IMAGE_MAX_BYTES
    deadline = Deadline(settings.IMAGE_FETCH_TOTAL_TIMEOUT)
    url = uri
    for _hop in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
        if scheme not in DEFAULT_PORTS or not host:
            raise FetchFailed(f"a redirect to {url[:200]!r}, which is not an http(s) URL", transient=False)
        port = parts.port or DEFAULT_PORTS[scheme]
        try:
            check_host_allowed(scheme, host, port)
        except RefRefused as exc:
            raise FetchFailed(str(exc) if url == uri else f"redirected: {exc}", transient=False) from None
        address = resolve_checked(host, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = host if port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
        pool = _pool(scheme, address, host, port)
        try:
            response = pool.urlopen(
                "GET",
                target,
                headers={"Host": host_header, "User-Agent": USER_AGENT, "Accept": "image/*"},
                redirect=False,
                retries=False,
                preload_content=False,
            )
            try:
                status = response.status
                if status in (301, 302, 303, 307, 308):
                    location = response.headers.get("Location")
                    if not location:
                        raise FetchFailed(f"HTTP {status} without a Location", transient=False)
                    url = urljoin(url, location)
                    continue
                if status == 429 or status >= 500:
                    raise FetchFailed(f"HTTP {status} from {host}", transient=True)
                if status != 200:
                    raise FetchFailed(f"HTTP {status} from {host}", transient=False)
                declared = response.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise _too_large(int(declared), limit)
                return read_bounded(response.read, limit, deadline)
            finally:
                response.release_conn()
                response.close()
        except SSLError as exc:
            raise FetchFailed(f"TLS failed with {host}: {exc}", transient=False) from None
        except TimeoutError:
            raise FetchFailed(
                f"{host} did not answer within the timeout (connect {settings.IMAGE_FETCH_CONNECT_TIMEOUT:g} s, "
                f"read {settings.IMAGE_FETCH_READ_TIMEOUT:g} s)",
                transient=True,
            ) from None
        except Urllib3Error as exc:
            raise FetchFailed(f"connection to {host} failed: {type(exc).__name__}", transient=True) from None
        finally:
            pool.close()
    raise FetchFailed(f"more than {MAX_REDIRECTS} redirects", transient=False)


# --------------------------------------------------------------------------------------------
# s3

_s3_lock = threading.Lock()
_s3_client: Any = None

# S3 error codes that will not change on a retry.
S3_PERMANENT = {"NoSuchKey", "NoSuchBucket", "AccessDenied", "404", "403", "InvalidObjectState", "InvalidBucketName"}


def s3_client():
    global _s3_client
    with _s3_lock:
        if _s3_client is None:
            import boto3
            from botocore.config import Config

            _s3_client = boto3.session.Session().client(
                "s3",
                endpoint_url=settings.IMAGE_REF_S3_ENDPOINT_URL or None,
                region_name=settings.IMAGE_REF_S3_REGION or None,
                config=Config(
                    connect_timeout=settings.IMAGE_FETCH_CONNECT_TIMEOUT,
                    read_timeout=settings.IMAGE_FETCH_READ_TIMEOUT,
                    retries={"max_attempts": 1, "mode": "standard"},
                    signature_version="s3v4",
                ),
            )
        return _s3_client


def reset_s3_client() -> None:
    """Forget the client (tests change the endpoint)."""
    global _s3_client
    with _s3_lock:
        _s3_client = None


def fetch_s3(bucket: str, key: str) -> bytes:
    from botocore.exceptions import BotoCoreError, ClientError

    limit = settings.IMAGE_MAX_BYTES
    deadline = Deadline(settings.IMAGE_FETCH_TOTAL_TIMEOUT)
    try:
        answer = s3_client().get_object(Bucket=bucket, Key=key)
        body = answer["Body"]
        try:
            size = int(answer.get("ContentLength") or 0)
            if size > limit:
                raise _too_large(size, limit)
            return read_bounded(body.read, limit, deadline)
        finally:
            body.close()
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "404"):
            raise FetchFailed(f"no such key s3://{bucket}/{key}", transient=False) from None
        if code == "NoSuchBucket":
            raise FetchFailed(f"no such bucket {bucket}", transient=False) from None
        raise FetchFailed(f"S3 refused: {code or 'error'}", transient=code not in S3_PERMANENT) from None
    except BotoCoreError as exc:
        raise FetchFailed(f"S3 request failed: {type(exc).__name__}", transient=True) from None


# --------------------------------------------------------------------------------------------
# path


def fetch_path(path: str) -> bytes:
    root = os.path.realpath(settings.IMAGE_REF_ROOT)
    real = os.path.realpath(path)
    if not real.startswith(root.rstrip("/") + "/"):
        raise FetchFailed("the path leads outside the read-only root (ANNOTATOR_IMAGE_REF_ROOT)", transient=False)
    if not os.path.isfile(real):
        raise FetchFailed(f"no such file {path}", transient=False)
    limit = settings.IMAGE_MAX_BYTES
    size = os.path.getsize(real)
    if size > limit:
        raise _too_large(size, limit)
    with open(real, "rb") as f:
        return read_bounded(f.read, limit, Deadline(settings.IMAGE_FETCH_TOTAL_TIMEOUT))


def fetch_uri(uri: str) -> bytes:
    """Parse, check and fetch (bench and shell use)."""
    return fetch(parse_reference(uri))
