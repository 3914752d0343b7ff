"""Evidence in an S3-compatible object store (AIREG_EVIDENCE_STORE=s3), against a real S3 server: s3rver (npm,
pinned in tests/s3/package-lock.json; it checks every request's signature and keeps objects on disk), started
by the test on a free port with a bucket of its own. Uploads stream (multipart past 5 MiB), read back byte for
byte, the same bytes are one object, a missing or changed object is a 500 and never a short 200, and the audit
pack carries the file from the store."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import socket
import subprocess
import tempfile
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from minio import Minio

from app.compliance import blob_store
from app.db import session_scope
from app.settings import get_settings
from tests.factories import create_user
from tests.server import free_port
from tests.systems.helpers import system_body

Headers = dict[str, str]
S3_DIR = Path(__file__).resolve().parents[1] / "s3"
S3RVER = S3_DIR / "node_modules" / "s3rver" / "bin" / "s3rver.js"
NODE = shutil.which("node")
BUCKET = "evidence"
KEY = SECRET = "S3RVER"  # s3rver's built-in account
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
MIB = 1 << 20

needs_s3rver = pytest.mark.skipif(
    NODE is None or not (S3_DIR / "node_modules").is_dir(),
    reason="needs node and `npm ci --prefix tests/s3` (s3rver); in CI these tests always run",
)


@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """``AIREG_*`` settings for the block (None: unset), the settings cache cleared on the way in and out."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        _set_environment(values)
        yield
    finally:
        _set_environment(saved)


def _set_environment(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    get_settings.cache_clear()


@contextmanager
def s3rver(root: Path) -> Iterator[str]:
    """Run s3rver on a free port with the bucket ``BUCKET``, objects under ``root``; yields its URL."""
    port = free_port()
    log = root / "s3rver.log"
    cmd = [str(NODE), str(S3RVER), "-d", str(root / "data"), "-a", "127.0.0.1", "-p", str(port)]
    with log.open("w") as out:
        proc = subprocess.Popen([*cmd, "--configure-bucket", BUCKET], stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, log.read_text()[-3000:]
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "s3rver did not start listening"
                    time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def s3_settings(url: str) -> dict[str, str | None]:
    return {
        "AIREG_EVIDENCE_STORE": "s3",
        "AIREG_S3_ENDPOINT": url,
        "AIREG_S3_BUCKET": BUCKET,
        "AIREG_S3_REGION": "us-east-1",
        "AIREG_S3_ACCESS_KEY": KEY,
        "AIREG_S3_SECRET_KEY": SECRET,
    }


@pytest.fixture
def s3(db: None) -> Iterator[Minio]:
    """s3rver with an empty bucket, the registry's settings pointing at it; yields a client of the bucket."""
    with (
        tempfile.TemporaryDirectory(prefix="aireg-s3-") as root,
        s3rver(Path(root)) as url,
        environment(**s3_settings(url)),
    ):
        minio = Minio(url.removeprefix("http://"), KEY, SECRET, secure=False, region="us-east-1")
        assert minio.bucket_exists(BUCKET)
        yield minio


@contextmanager
def started_app() -> Iterator[Any]:
    """The app, started (its start checks run) with the settings of the moment."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def make_people(client: Any) -> dict[str, Headers]:
    """An admin, plant STR with line BODY1, and a business owner and an auditor there."""
    admin = create_user("admin", ("admin", "*"), ("compliance_officer", "*"))
    r = client.post(
        "/api/v1/sites",
        json={"code": "STR", "name": "Plant STR", "lines": [{"code": "BODY1", "name": "Body shop"}]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return {
        "admin": admin,
        "bob": create_user("bob", ("business_owner", "STR")),
        "audrey": create_user("audrey", ("auditor", "STR")),
    }


def make_system(client: Any, admin: Headers) -> str:
    r = client.post("/api/v1/systems", json=system_body(), headers=admin)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture
def app_client(s3: Minio) -> Iterator[Any]:
    with started_app() as client:
        yield client


@pytest.fixture
def people(app_client: Any) -> dict[str, Headers]:
    return make_people(app_client)


@pytest.fixture
def system(app_client: Any, people: dict[str, Headers]) -> str:
    return make_system(app_client, people["admin"])


def upload(client: Any, headers: Headers, system_id: str, content: bytes, title: str = "Test report") -> Any:
    return client.post(
        f"/api/v1/systems/{system_id}/evidence",
        files={"file": ("report.pdf", content, "application/pdf")},
        data={"title": title},
        headers=headers,
    )


def objects(minio: Minio) -> dict[str, int]:
    return {str(o.object_name): int(o.size or 0) for o in minio.list_objects(BUCKET)}


def rows(table: str) -> int:
    with session_scope(write=False) as session:
        return int(session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def problem_type(response: Any) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text[:300]
    return str(response.json()["type"]).rsplit("/", 1)[-1]


@needs_s3rver
def test_files_go_to_the_bucket_once_and_come_back_byte_for_byte(
    app_client: Any, s3: Minio, people: dict[str, Headers], system: str
) -> None:
    big = b"%PDF-1.7\n" + os.urandom(12 * MIB)  # a multipart upload: three parts
    for content in (PDF, big):
        sha256 = hashlib.sha256(content).hexdigest()
        r = upload(app_client, people["bob"], system, content)
        assert r.status_code == 201, r.text
        assert r.json()["sha256"] == sha256 and r.json()["size"] == len(content)
        assert objects(s3)[sha256] == len(content)  # stored (durably) before the 201

        back = app_client.get(f"/api/v1/evidence/{r.json()['id']}/content", headers=people["audrey"])
        assert back.status_code == 200 and back.content == content
        assert back.headers["etag"] == f'"{sha256}"' and back.headers["content-length"] == str(len(content))
        assert hashlib.sha256(back.content).hexdigest() == sha256

    # the database keeps the metadata only: one evidence_blob row per file, no chunk rows
    assert (rows("evidence_blob"), rows("evidence_chunk")) == (2, 0)

    # the same bytes again: another evidence item, still one object
    again = upload(app_client, people["admin"], system, big, title="Filed again")
    assert again.status_code == 201, again.text
    assert len(objects(s3)) == 2 and (rows("evidence"), rows("evidence_blob")) == (3, 2)

    # an object left by an upload whose transaction failed is reused, not written again
    orphan = b"%PDF-1.7\n orphaned"
    orphan_sha = hashlib.sha256(orphan).hexdigest()
    s3.put_object(BUCKET, orphan_sha, io.BytesIO(orphan), len(orphan))
    stamp = s3.stat_object(BUCKET, orphan_sha).last_modified
    time.sleep(1.1)  # S3 times are to the second
    assert upload(app_client, people["bob"], system, orphan).status_code == 201
    assert s3.stat_object(BUCKET, orphan_sha).last_modified == stamp


@needs_s3rver
def test_the_audit_pack_carries_the_file_from_the_bucket(
    app_client: Any, s3: Minio, people: dict[str, Headers], system: str
) -> None:
    content = b"%PDF-1.7\n" + os.urandom(3 * MIB)
    r = upload(app_client, people["bob"], system, content)
    assert r.status_code == 201, r.text
    evidence = r.json()
    pack = app_client.get(f"/api/v1/systems/{system}/documents/audit-pack", headers=people["audrey"])
    assert pack.status_code == 200, pack.text
    with zipfile.ZipFile(io.BytesIO(pack.content)) as zf:
        assert zf.read(f"evidence/{evidence['sha256']}-report.pdf") == content


@needs_s3rver
def test_a_missing_or_changed_object_is_a_500_never_a_short_200(
    app_client: Any, s3: Minio, people: dict[str, Headers], system: str
) -> None:
    content = b"%PDF-1.7\n" + os.urandom(2 * MIB)
    evidence = upload(app_client, people["bob"], system, content).json()
    url = f"/api/v1/evidence/{evidence['id']}/content"
    pack_url = f"/api/v1/systems/{system}/documents/audit-pack"

    s3.remove_object(BUCKET, evidence["sha256"])
    for response in (
        app_client.get(url, headers=people["audrey"]),
        app_client.get(pack_url, headers=people["audrey"]),
    ):
        assert response.status_code == 500 and problem_type(response) == "stored-data-damaged"
        assert evidence["sha256"] in response.json()["detail"]

    # another size: refused before a byte is sent
    s3.put_object(BUCKET, evidence["sha256"], io.BytesIO(content[:-1]), len(content) - 1)
    response = app_client.get(url, headers=people["audrey"])
    assert response.status_code == 500 and problem_type(response) == "stored-data-damaged"

    # the same size, other bytes: the answer breaks off before its last chunk, and the pack is refused
    changed = content[:-1] + bytes([content[-1] ^ 1])
    s3.put_object(BUCKET, evidence["sha256"], io.BytesIO(changed), len(changed))
    try:
        response = app_client.get(url, headers=people["audrey"])
    except Exception:  # the transport may report the broken answer as an error
        pass
    else:
        assert response.status_code != 200 or len(response.content) < len(content)
    response = app_client.get(pack_url, headers=people["audrey"])
    assert response.status_code == 500 and problem_type(response) == "stored-data-damaged"


@needs_s3rver
def test_an_upload_streams_one_part_at_a_time(s3: Minio) -> None:
    """20 MiB to the bucket with at most one 5 MiB part in memory (measured with tracemalloc)."""
    store = blob_store.s3_store()
    assert store is not None
    with tempfile.TemporaryFile() as spool:
        digest = hashlib.sha256()
        for _ in range(20):
            block = os.urandom(MIB)
            spool.write(block)
            digest.update(block)
        spool.seek(0)
        tracemalloc.start()
        try:
            store.put(digest.hexdigest(), spool, 20 * MIB)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    print(f"peak memory while storing 20 MiB in S3: {peak / MIB:.1f} MiB")
    assert peak < 12 * MIB and store.exists(digest.hexdigest())
    read = hashlib.sha256()
    for chunk in store.open(digest.hexdigest(), 20 * MIB):
        read.update(chunk)
    assert read.hexdigest() == digest.hexdigest()


def test_an_unreachable_store_is_a_503_and_nothing_is_stored(db: None) -> None:
    with environment(**s3_settings(f"http://127.0.0.1:{free_port()}")), started_app() as client:
        people = make_people(client)
        system = make_system(client, people["admin"])
        r = upload(client, people["bob"], system, PDF)
        assert r.status_code == 503 and problem_type(r) == "evidence-store-unavailable", r.text
        assert "try again later" in r.json()["detail"]
        assert (rows("evidence"), rows("evidence_blob")) == (0, 0)


def test_s3_without_endpoint_bucket_or_keys_stops_the_service_at_start() -> None:
    from app.startup import STARTUP_ERRORS, check_startup

    assert blob_store.EvidenceStoreConfigError in STARTUP_ERRORS
    incomplete = {
        "AIREG_EVIDENCE_STORE": "s3",
        "AIREG_S3_ENDPOINT": None,
        "AIREG_S3_BUCKET": "evidence",
        "AIREG_S3_ACCESS_KEY": None,
        "AIREG_S3_SECRET_KEY": None,
    }
    with environment(**incomplete), pytest.raises(blob_store.EvidenceStoreConfigError) as refused:
        check_startup()
    assert "AIREG_S3_ENDPOINT, AIREG_S3_ACCESS_KEY, AIREG_S3_SECRET_KEY" in str(refused.value)
    with environment(**{**incomplete, "AIREG_EVIDENCE_STORE": "database"}):
        check_startup()  # the database store needs none of them
