"""Where attachment bytes live, behind one interface: a folder (the embedded default) or
S3-compatible object storage (MinIO, AWS S3, ...), chosen by ATTACHMENTS_STORAGE.

Keys are relative paths (`blobs/ab/<sha256>/full.jpg`, `uploads/<id>/<start>-<nonce>`);
every write is whole-object and atomic: a reader sees the old object, the new one, or
none, never part of one. Nothing here knows about records or scopes.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol

_KEY = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


class StoreError(Exception):
    """The storage cannot be reached or refused the operation."""


def _check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key.split("/"):
        raise ValueError(f"bad storage key {key!r}")
    return key


class AttachmentStore(Protocol):
    """The operations the attachments need from a storage backend."""

    name: str

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def keys(self, prefix: str) -> list[str]: ...


class LocalStore:
    """A folder: each key a file, written to a temporary name, synced and renamed."""

    name = "local"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        # empty folders go too (uploads/<id>/, blobs/ab/<sha>/), never the root
        parent = path.parent
        while parent != self.root and parent.is_dir():
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def keys(self, prefix: str) -> list[str]:
        base = self.root / _check_key(prefix.rstrip("/"))
        if not base.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.root))
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")
        )


class S3Store:
    """An S3 bucket through boto3 (MinIO, AWS, or any S3-compatible server)."""

    name = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        create_bucket: bool = False,
        client: Any = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.client = client or boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            config=Config(
                s3={"addressing_style": "path"},
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )
        self._create_bucket = create_bucket
        self._checked = False

    def _ready(self) -> None:
        if self._checked or not self._create_bucket:
            return
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)
        self._checked = True

    def _call(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        self._ready()
        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise KeyError(kwargs.get("Key")) from None
            raise StoreError(f"s3 {method}: {code}") from None
        except BotoCoreError as exc:
            raise StoreError(f"s3 {method}: {type(exc).__name__}") from None

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self._call("put_object", Key=_check_key(key), Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        return self._call("get_object", Key=_check_key(key))["Body"].read()

    def exists(self, key: str) -> bool:
        try:
            self._call("head_object", Key=_check_key(key))
        except KeyError:
            return False
        return True

    def delete(self, key: str) -> None:
        self._call("delete_object", Key=_check_key(key))

    def keys(self, prefix: str) -> list[str]:
        out: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Prefix": _check_key(prefix.rstrip("/")) + "/"}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list_objects_v2", **kwargs)
            out.extend(item["Key"] for item in page.get("Contents", []))
            if not page.get("IsTruncated"):
                return sorted(out)
            token = page["NextContinuationToken"]


def store_from_settings(settings: Any) -> AttachmentStore:
    """The backend the settings choose (ATTACHMENTS_STORAGE and its companions)."""
    if settings.ATTACHMENTS_STORAGE == "s3":
        return S3Store(
            settings.S3_BUCKET,
            endpoint_url=settings.S3_ENDPOINT_URL,
            region=settings.S3_REGION,
            access_key=settings.S3_ACCESS_KEY_ID,
            secret_key=settings.S3_SECRET_ACCESS_KEY,
            create_bucket=settings.S3_CREATE_BUCKET,
        )
    return LocalStore(settings.ATTACHMENTS_DIR or Path(settings.DATA_DIR) / "attachments")
