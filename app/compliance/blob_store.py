"""Where the bytes of evidence files live: in the database (default) or in an S3-compatible object store
(``AIREG_EVIDENCE_STORE=s3``).

Either way a file is keyed by its SHA-256, written once and never changed, and the database keeps its
``evidence_blob`` row (size and hash, so every worker finds it and the same bytes are stored once). The row's
``chunks`` says which store holds the bytes: its ``evidence_chunk`` rows, or 0 for the object store. A file
is read back from the store that holds it, whatever the setting says today.

A 2xx to an upload means the bytes are durable: the object store has answered the upload (the single PUT,
or the completion of a multipart upload) before the request's transaction commits the row. A failure between
the two leaves an object that no row names: harmless, and reused by the next upload of the same bytes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit

import sqlalchemy as sa
from minio import Minio
from minio.error import MinioException, S3Error
from sqlmodel import Session, col, select
from urllib3.exceptions import HTTPError
from urllib3.response import BaseHTTPResponse

from app.compliance.models import EvidenceBlob, EvidenceChunk
from app.db import session_scope
from app.errors import ServiceUnavailable, StoredDataDamaged
from app.settings import Settings, get_settings

log = logging.getLogger("aireg.evidence")

CHUNK_BYTES = 1 << 20  # one evidence_chunk row, and one piece of a read, of at most 1 MiB


class EvidenceStoreConfigError(Exception):
    """``AIREG_EVIDENCE_STORE`` and the ``AIREG_S3_*`` settings cannot work together (found at start)."""


class EvidenceStoreUnavailable(ServiceUnavailable):
    """The object store did not answer, or refused: nothing is stored, nothing is answered from it."""

    title, type_slug = "Evidence store unavailable", "evidence-store-unavailable"


class BlobStore(Protocol):
    """Bytes keyed by their SHA-256, written once, read back a chunk at a time."""

    def chunk_rows(self, size: int) -> int:
        """The ``evidence_chunk`` rows a file of ``size`` bytes takes here (0: it lives elsewhere)."""
        ...

    def exists(self, sha256: str) -> bool:
        """Whether the bytes of ``sha256`` are stored here."""
        ...

    def put(self, sha256: str, stream: BinaryIO, size: int) -> None:
        """Store ``size`` bytes read from ``stream`` under ``sha256``; durable when it returns."""
        ...

    def open(self, sha256: str, size: int) -> Iterator[bytes]:
        """The stored bytes, opened now: missing ones raise ``StoredDataDamaged`` before any is read."""
        ...


class DatabaseBlobStore:
    """Each file as ``evidence_chunk`` rows beside its ``evidence_blob`` row, in the database every worker and
    every backup sees."""

    def __init__(self, session: Session | None = None) -> None:
        """``session``: the one to write and read in; None: each read in a short read transaction of its own
        (for a streamed response, which outlives the request's session)."""
        self._session = session

    def chunk_rows(self, size: int) -> int:
        return -(-size // CHUNK_BYTES)

    def exists(self, sha256: str) -> bool:
        return self._stored_rows(sha256) > 0

    def put(self, sha256: str, stream: BinaryIO, size: int) -> None:
        """Core inserts, a chunk at a time: nothing stays in the session's identity map. The ``evidence_blob``
        row must be there first (the chunks reference it)."""
        if self._session is None:
            raise TypeError("DatabaseBlobStore.put needs the session of the upload's transaction")
        for seq in range(self.chunk_rows(size)):
            data = stream.read(CHUNK_BYTES)
            if len(data) != min(CHUNK_BYTES, size - seq * CHUNK_BYTES):
                raise ValueError(f"evidence {sha256}: the upload changed after it was checked")
            self._session.execute(sa.insert(EvidenceChunk).values(sha256=sha256, seq=seq, data=data))

    def open(self, sha256: str, size: int) -> Iterator[bytes]:
        rows, expected = self._stored_rows(sha256), self.chunk_rows(size)
        if rows != expected:
            log.error("evidence %s: %d chunk rows stored, %d expected", sha256, rows, expected)
            raise damaged(sha256, f"{rows} of its {expected} chunks are in the database")
        return self._chunks(sha256, expected)

    def _chunks(self, sha256: str, count: int) -> Iterator[bytes]:
        for seq in range(count):
            query = select(col(EvidenceChunk.data)).where(
                col(EvidenceChunk.sha256) == sha256, col(EvidenceChunk.seq) == seq
            )
            with self._reading() as session:
                data = session.exec(query).one()
            yield bytes(data)

    def _stored_rows(self, sha256: str) -> int:
        query = select(sa.func.count()).select_from(EvidenceChunk).where(col(EvidenceChunk.sha256) == sha256)
        with self._reading() as session:
            return session.exec(query).one()

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        if self._session is not None:
            yield self._session
        else:
            with session_scope(write=False) as session:
                yield session


_MISSING = frozenset({"NoSuchKey", "NotFound", "ResourceNotFound"})


class S3BlobStore:
    """Each file one object named by its SHA-256 in a bucket of an S3-compatible store. Uploads stream (a
    multipart upload past 5 MiB, one part in memory at a time); reads stream."""

    def __init__(self, client: Minio, bucket: str, endpoint: str) -> None:
        self._client, self.bucket, self.endpoint = client, bucket, endpoint

    def chunk_rows(self, size: int) -> int:
        return 0

    def exists(self, sha256: str) -> bool:
        return self._stored_size(sha256) is not None

    def put(self, sha256: str, stream: BinaryIO, size: int) -> None:
        if self._stored_size(sha256) == size:
            return  # left by an upload whose transaction then failed: the same bytes, by their name
        try:
            # part_size 0: the SDK's (5 MiB parts up to 50 GB); one part in flight, so one part in memory
            self._client.put_object(self.bucket, sha256, stream, size, part_size=0, num_parallel_uploads=1)
        except (MinioException, HTTPError) as exc:
            raise self._unavailable("store", sha256, exc) from exc

    def open(self, sha256: str, size: int) -> Iterator[bytes]:
        try:
            response = self._client.get_object(self.bucket, sha256)
        except S3Error as exc:
            if exc.code in _MISSING:
                log.error("evidence %s: no object in bucket %s at %s", sha256, self.bucket, self.endpoint)
                raise damaged(sha256, f"the object is missing from the S3 bucket {self.bucket!r}") from exc
            raise self._unavailable("read", sha256, exc) from exc
        except (MinioException, HTTPError) as exc:
            raise self._unavailable("read", sha256, exc) from exc
        length = response.headers.get("Content-Length")
        if length != str(size):
            _release(response)
            log.error("evidence %s: the object holds %s bytes, %d recorded", sha256, length, size)
            raise damaged(sha256, f"the S3 object holds {length} bytes, not the recorded {size}")
        return self._stream(response, sha256)

    def _stream(self, response: BaseHTTPResponse, sha256: str) -> Iterator[bytes]:
        try:
            yield from response.stream(CHUNK_BYTES)
        except HTTPError as exc:
            raise self._unavailable("read", sha256, exc) from exc
        finally:
            _release(response)

    def _stored_size(self, sha256: str) -> int | None:
        try:
            return self._client.stat_object(self.bucket, sha256).size
        except S3Error as exc:
            if exc.code in _MISSING:
                return None
            raise self._unavailable("look up", sha256, exc) from exc
        except (MinioException, HTTPError) as exc:
            raise self._unavailable("look up", sha256, exc) from exc

    def _unavailable(self, doing: str, sha256: str, exc: Exception) -> EvidenceStoreUnavailable:
        why = f"{exc.code}: {exc.message}" if isinstance(exc, S3Error) else type(exc).__name__
        log.error("evidence %s: could not %s it in bucket %s: %s", sha256, doing, self.bucket, exc)
        return EvidenceStoreUnavailable(
            f"the S3 evidence store (bucket {self.bucket!r} at {self.endpoint}) could not {doing} the file "
            f"{sha256}: {why}; nothing was stored or answered from it, try again later"
        )


def _release(response: BaseHTTPResponse) -> None:
    response.close()
    response.release_conn()


def damaged(sha256: str, why: str) -> StoredDataDamaged:
    """The refusal for stored bytes that are missing or changed."""
    return StoredDataDamaged(
        f"the stored evidence file {sha256} is damaged: {why}; restore it from a backup before reading it"
    )


def check_config(settings: Settings | None = None) -> None:
    """``AIREG_EVIDENCE_STORE=s3`` needs an endpoint, a bucket and keys (``EvidenceStoreConfigError``)."""
    settings = settings or get_settings()
    if settings.evidence_store != "s3":
        return
    missing = [name for name, value in _s3_settings(settings) if not value]
    if missing:
        raise EvidenceStoreConfigError(
            f"AIREG_EVIDENCE_STORE=s3 needs {', '.join(missing)}: the S3-compatible store's URL, bucket and "
            "access keys (or set AIREG_EVIDENCE_STORE=database to keep evidence files in the database)"
        )


def _s3_settings(settings: Settings) -> list[tuple[str, object]]:
    return [
        ("AIREG_S3_ENDPOINT", settings.s3_endpoint),
        ("AIREG_S3_BUCKET", settings.s3_bucket),
        ("AIREG_S3_ACCESS_KEY", settings.s3_access_key),
        ("AIREG_S3_SECRET_KEY", settings.s3_secret_key),
    ]


def s3_store() -> S3BlobStore | None:
    """The object store the ``AIREG_S3_*`` settings name, or None when they name none."""
    s = get_settings()
    if not (s.s3_endpoint and s.s3_bucket and s.s3_access_key and s.s3_secret_key):
        return None
    client = _client(s.s3_endpoint, s.s3_region, s.s3_access_key, s.s3_secret_key.get_secret_value())
    return S3BlobStore(client, s.s3_bucket, s.s3_endpoint)


@lru_cache(maxsize=4)
def _client(endpoint: str, region: str | None, access_key: str, secret_key: str) -> Minio:
    """One client (and its connection pool) per configuration."""
    url = urlsplit(endpoint)
    return Minio(
        url.netloc,
        access_key=access_key,
        secret_key=secret_key,
        secure=url.scheme == "https",
        region=region,
    )


def for_new_files(session: Session) -> BlobStore:
    """The store new files go to (``AIREG_EVIDENCE_STORE``), writing in ``session``."""
    if get_settings().evidence_store == "s3":
        store = s3_store()
        if store is None:  # check_config stops the service at start before this can happen
            raise EvidenceStoreUnavailable("AIREG_EVIDENCE_STORE=s3, but the AIREG_S3_* settings are not")
        return store
    return DatabaseBlobStore(session)


def holding(blob: EvidenceBlob, reader: Session | None) -> BlobStore:
    """The store that holds ``blob``'s bytes; ``reader``: the session the database store reads in (None: a
    short read transaction per chunk)."""
    if blob.chunks > 0:
        return DatabaseBlobStore(reader)
    store = s3_store()
    if store is None:
        raise damaged(blob.sha256, "it is in the S3 evidence store, but the AIREG_S3_* settings are not set")
    return store


def checked(chunks: Iterator[bytes], sha256: str, size: int) -> Iterator[bytes]:
    """``chunks`` passed on while they count and hash to ``size`` and ``sha256``: the last one is held back
    until they do, so changed bytes never reach a reader whole (a streamed response breaks off instead)."""
    digest, seen, held = hashlib.sha256(), 0, b""
    try:
        for chunk in chunks:
            if held:
                yield held
            digest.update(chunk)
            seen += len(chunk)
            held = chunk
    finally:
        if isinstance(chunks, Generator):
            chunks.close()
    if seen != size or digest.hexdigest() != sha256:
        log.error("evidence %s: the stored bytes (%d) hash to %s", sha256, seen, digest.hexdigest())
        raise damaged(sha256, f"its {seen} stored bytes hash to {digest.hexdigest()}")
    yield held
