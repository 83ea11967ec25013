"""GET/HEAD/PUT /v1/packages/{sha256} over real HTTP (uvicorn on loopback, httpx client)."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from forecourt.blobs import BlobRef, FileBlobStore
from tests.blobs._server import serve
from tests.blobs.package_server import ADMIN_TOKEN, PackageServer, build_app

DATA = os.urandom(200_000)
REF = BlobRef.of(DATA)
DEALER = {"x-dealer": "dealer-42"}


@pytest.fixture
def client(package_server: PackageServer) -> Iterator[httpx.Client]:
    package_server.store.put([DATA])
    with httpx.Client(base_url=package_server.url, headers=DEALER) as http:
        yield http


URL = f"/v1/packages/{REF.sha256}"


def test_full_get_streams_the_blob_with_validators(client: httpx.Client) -> None:
    response = client.get(URL)
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"] == f'"{REF.sha256}"'
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["content-type"] == "application/octet-stream"
    digest = base64.b64encode(hashlib.sha256(DATA).digest()).decode()
    assert response.headers["repr-digest"] == f"sha-256=:{digest}:"


def test_single_range_answers_206_with_content_range(client: httpx.Client) -> None:
    response = client.get(URL, headers={"range": "bytes=1000-1999"})
    assert response.status_code == 206
    assert response.content == DATA[1000:2000]
    assert response.headers["content-range"] == f"bytes 1000-1999/{len(DATA)}"
    assert response.headers["content-length"] == "1000"


def test_open_ended_and_suffix_ranges(client: httpx.Client) -> None:
    tail = client.get(URL, headers={"range": "bytes=199000-"})
    assert (tail.status_code, tail.content) == (206, DATA[199000:])
    suffix = client.get(URL, headers={"range": "bytes=-10"})
    assert (suffix.status_code, suffix.content) == (206, DATA[-10:])
    assert suffix.headers["content-range"] == f"bytes 199990-199999/{len(DATA)}"


def test_unsatisfiable_range_answers_416_problem(client: httpx.Client) -> None:
    response = client.get(URL, headers={"range": f"bytes={len(DATA)}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "range_not_satisfiable"
    assert problem["status"] == 416
    assert problem["size"] == len(DATA)


def test_if_range_with_our_etag_honours_the_range(client: httpx.Client) -> None:
    headers = {"range": "bytes=10-19", "if-range": f'"{REF.sha256}"'}
    response = client.get(URL, headers=headers)
    assert (response.status_code, response.content) == (206, DATA[10:20])


def test_if_range_with_another_validator_sends_the_whole_blob(client: httpx.Client) -> None:
    for validator in ('"stale-etag"', f'W/"{REF.sha256}"', "Wed, 21 Oct 2015 07:28:00 GMT"):
        response = client.get(URL, headers={"range": "bytes=10-19", "if-range": validator})
        assert (response.status_code, response.content) == (200, DATA)
        assert "content-range" not in response.headers


def test_multi_range_is_answered_with_the_whole_blob(client: httpx.Client) -> None:
    response = client.get(URL, headers={"range": "bytes=0-9,20-29"})
    assert (response.status_code, response.content) == (200, DATA)


def test_head_gives_headers_and_no_body(client: httpx.Client) -> None:
    response = client.head(URL)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["etag"] == f'"{REF.sha256}"'
    ranged = client.head(URL, headers={"range": "bytes=0-99"})
    assert ranged.status_code == 206
    assert ranged.headers["content-length"] == "100"


def test_if_none_match_with_our_etag_answers_304(client: httpx.Client) -> None:
    for validator in (f'"{REF.sha256}"', f'"other", "{REF.sha256}"', "*"):
        response = client.get(URL, headers={"if-none-match": validator})
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == REF.etag
    assert client.get(URL, headers={"if-none-match": '"other"'}).status_code == 200


def test_missing_and_malformed_digests_are_problems(client: httpx.Client) -> None:
    missing = client.get(f"/v1/packages/{'0' * 64}")
    assert missing.status_code == 404
    assert missing.json()["code"] == "blob_not_found"
    malformed = client.get("/v1/packages/ABC")
    assert malformed.status_code == 400
    assert malformed.json()["code"] == "invalid_digest"
    assert "expected 64 characters, got 3" in malformed.json()["detail"]


def test_requests_refused_by_authorize_never_reach_the_store(
    package_server: PackageServer, client: httpx.Client
) -> None:
    stranger = {"x-dealer": "dealer-7"}
    assert client.get(URL, headers=stranger).status_code == 403
    other = b"unauthorised upload"
    put = client.put(f"/v1/packages/{BlobRef.of(other).sha256}", content=other, headers=stranger)
    assert put.status_code == 403
    assert not package_server.store.exists(BlobRef.of(other).sha256)


def test_upload_is_stored_then_idempotent(package_server: PackageServer) -> None:
    blob = os.urandom(50_000)
    ref = BlobRef.of(blob)
    with httpx.Client(base_url=package_server.url, headers=DEALER) as http:

        def body() -> Iterator[bytes]:
            yield from (blob[i : i + 4096] for i in range(0, len(blob), 4096))

        created = http.put(f"/v1/packages/{ref.sha256}", content=body())
        assert created.status_code == 201
        assert created.json() == {"sha256": ref.sha256, "size": ref.size}
        assert created.headers["location"] == f"/v1/packages/{ref.sha256}"
        again = http.put(f"/v1/packages/{ref.sha256}", content=blob)
        assert again.status_code == 200
    assert package_server.store.stat(ref.sha256) == ref
    assert package_server.store.path_of(ref.sha256).read_bytes() == blob


def test_upload_with_wrong_digest_is_refused_and_nothing_stored(
    package_server: PackageServer,
) -> None:
    claimed = hashlib.sha256(b"what the uploader claims").hexdigest()
    with httpx.Client(base_url=package_server.url, headers=DEALER) as http:
        response = http.put(f"/v1/packages/{claimed}", content=b"what it actually sends")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "digest_mismatch"
    assert list(package_server.store.iter()) == []
    assert list(package_server.store.staging_dir.iterdir()) == []


def test_upload_over_the_size_bound_is_refused_before_storing(
    package_server: PackageServer,
) -> None:
    blob = b"x" * (4 * 1024 * 1024 + 1)
    with httpx.Client(base_url=package_server.url, headers=DEALER) as http:
        response = http.put(f"/v1/packages/{BlobRef.of(blob).sha256}", content=blob)
    assert response.status_code == 413
    assert response.json()["code"] == "blob_too_large"
    assert list(package_server.store.iter()) == []


def test_delete_needs_the_admin_dependency(
    package_server: PackageServer, client: httpx.Client
) -> None:
    assert client.delete(URL).status_code == 403
    assert package_server.store.exists(REF.sha256)
    assert client.delete(URL, headers={"x-admin": ADMIN_TOKEN}).status_code == 204
    assert not package_server.store.exists(REF.sha256)


def test_delete_is_not_routed_without_an_admin_dependency(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    store.put([DATA])
    with serve(build_app(store, with_delete=False)) as url, httpx.Client(base_url=url) as http:
        response = http.delete(URL, headers=DEALER)
    assert response.status_code == 405
    assert store.exists(REF.sha256)
