"""Servers that tests start and stop themselves, all on 127.0.0.1 with free ports.

* :class:`MotoS3Server` — moto's standalone S3-compatible server in a subprocess.
* :class:`FaultProxy` — an HTTP proxy in front of it that injects faults (HTTP 5xx, 403, dropped
  connections) for chosen requests, to prove retries and fail-fast behaviour.
* :class:`PostgresServer` — a throw-away PostgreSQL cluster from Debian's ``postgresql`` package
  (``initdb`` into a temporary folder, ``pg_ctl start``), run as the ``postgres`` user when the
  tests run as root.

Pytest fixtures (imported by ``kws_assets_tests/conftest.py``, so every test module can use them):

* ``moto_server`` (module scope): the running :class:`MotoS3Server`.
* ``s3_server`` (function scope): an :class:`S3Endpoint` — endpoint URL plus a fresh, empty
  bucket — with AWS credentials set in the environment through ``monkeypatch`` (random values
  per test, so a test can look for them where they must not appear), ``AWS_ENDPOINT_URL``
  pointing at the server (a safety net: no boto3 client in a test can reach real AWS) and the
  user's own AWS config files hidden.

Example::

    def test_something(s3_server):
        client = s3_server.client()
        client.put_object(Bucket=s3_server.bucket, Key="a.wav", Body=b"...")
"""

from __future__ import annotations

import contextlib
import glob
import http.client
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

LOCALHOST = "127.0.0.1"
REGION = "us-east-1"
SERVER_START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


def _wait_until(
    ready: Callable[[], bool], timeout_s: float, what: str, proc: subprocess.Popen | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting")
        if ready():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout_s:.0f} s")


# ------------------------------------------------------------------------------------------ moto


class MotoS3Server:
    """moto's standalone server (``python -m moto.server``) on 127.0.0.1, in a subprocess."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        # Stays open as the server's stdout until stop() closes and removes it.
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - outlives this method
            prefix="moto-", suffix=".log", delete=False
        )

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1):
                return True
        except OSError:
            return False

    def start(self) -> MotoS3Server:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", LOCALHOST, "-p", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        _wait_until(self._ready, SERVER_START_TIMEOUT_S, "moto server", self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)

    def __enter__(self) -> MotoS3Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class S3Endpoint:
    """An S3-compatible endpoint, a bucket on it, and the credentials the environment holds."""

    endpoint_url: str
    bucket: str
    access_key_id: str
    secret_access_key: str
    region: str = REGION

    def client(self, endpoint_url: str | None = None, retries: int = 2):
        """A boto3 S3 client for the endpoint (credentials from the environment)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=endpoint_url or self.endpoint_url,
            region_name=self.region,
            config=Config(retries={"mode": "standard", "max_attempts": retries}),
        )

    def storage_yaml(
        self,
        endpoint_url: str | None = None,
        prefix: str = "kws",
        retries: int = 2,
        bucket: str | None = None,
    ) -> str:
        """The ``storage:`` block of a kws.yaml that puts clips/tables/models on this bucket."""
        return (
            f"storage: {{root: data, deployment: s3, s3_bucket: {bucket or self.bucket}, "
            f"s3_prefix: {prefix}, s3_endpoint_url: '{endpoint_url or self.endpoint_url}', "
            f"s3_region: {self.region}, s3_retries: {retries}}}\n"
        )

    def keys(self, prefix: str = "") -> list[str]:
        client = self.client()
        keys = []
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return sorted(keys)


def s3_environment(endpoint_url: str) -> dict[str, str]:
    """AWS variables for a test: random credentials, the endpoint, no user config files."""
    return {
        "AWS_ACCESS_KEY_ID": "KWSTEST" + secrets.token_hex(6).upper(),
        "AWS_SECRET_ACCESS_KEY": "kws-secret-" + secrets.token_urlsafe(24),
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


AWS_VARIABLES_TO_CLEAR = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL_S3",
)


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoS3Server]:
    """A moto S3 server for the test module; stopped when the module's tests are done."""
    with MotoS3Server() as server:
        yield server


@pytest.fixture
def s3_server(moto_server: MotoS3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Endpoint]:
    """A fresh bucket on the module's moto server, with AWS credentials in the environment."""
    env = s3_environment(moto_server.endpoint_url)
    for name in AWS_VARIABLES_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    endpoint = S3Endpoint(
        moto_server.endpoint_url,
        f"kws-test-{secrets.token_hex(5)}",
        env["AWS_ACCESS_KEY_ID"],
        env["AWS_SECRET_ACCESS_KEY"],
    )
    endpoint.client().create_bucket(Bucket=endpoint.bucket)
    yield endpoint


# ------------------------------------------------------------------------------ fault injection

DROP_CONNECTION = 0  # a FaultRule status that closes the connection without any answer
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
}


@dataclass
class FaultRule:
    """Answer matching requests with ``status``/``code`` instead of forwarding them.

    ``remaining`` is how many requests it still takes (None: every matching request);
    ``path_contains`` and ``methods`` select requests (empty: all).
    """

    status: int
    code: str
    remaining: int | None = None
    path_contains: str = ""
    methods: tuple[str, ...] = ()
    served: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.methods and method not in self.methods:
            return False
        return self.path_contains in path


@dataclass
class FaultProxy:
    """A forwarding HTTP proxy on 127.0.0.1 that injects the faults of its rules."""

    upstream_url: str
    port: int = field(default_factory=free_port)
    rules: list[FaultRule] = field(default_factory=list)
    forwarded: int = 0
    faults: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        host_port = self.upstream_url.split("://", 1)[1]
        host, _, port = host_port.partition(":")
        self._upstream = (host, int(port or 80))

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def fail(
        self,
        count: int | None,
        status: int = 500,
        code: str = "InternalError",
        path_contains: str = "",
        methods: tuple[str, ...] = (),
    ) -> FaultRule:
        """Add a rule: the next ``count`` matching requests (None: all) get ``status``."""
        rule = FaultRule(status, code, count, path_contains, methods)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def _take_fault(self, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    rule.served += 1
                    self.faults.append((method, path, rule.status))
                    return rule
            self.forwarded += 1
            return None

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args) -> None:  # quiet
                return None

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                body = self._body()
                rule = proxy._take_fault(self.command, self.path)
                if rule is not None:
                    self._answer_fault(rule)
                else:
                    self._forward(body)

            def _answer_fault(self, rule: FaultRule) -> None:
                if rule.status == DROP_CONNECTION:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                payload = (
                    f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{rule.code}'
                    f"</Code><Message>injected by the test proxy</Message>"
                    f"<RequestId>fault{rule.served}</RequestId></Error>"
                ).encode()
                self.send_response_only(rule.status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def _forward(self, body: bytes) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(*proxy._upstream, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    self.send_response_only(response.status, response.reason)
                    for name, value in response.getheaders():
                        if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                            self.send_header(name, value)
                    length = (
                        response.getheader("Content-Length") or "0"
                        if self.command == "HEAD"
                        else str(len(data))
                    )
                    self.send_header("Content-Length", length)
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer((LOCALHOST, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fault-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ------------------------------------------------------------------------------------ PostgreSQL


def postgres_bin_dir() -> Path:
    """The folder of initdb/pg_ctl: on PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not candidates:
        raise FileNotFoundError(
            "PostgreSQL server binaries not found (pg_ctl, initdb): install Debian's "
            "'postgresql' package (.ci/system-deps lists it)"
        )
    return Path(candidates[-1]).parent


class PostgresServer:
    """A temporary PostgreSQL cluster on 127.0.0.1 with password (scram) authentication.

    Root cannot run PostgreSQL, so when the tests run as root the cluster folder belongs to the
    ``postgres`` user and every server command runs through ``runuser -u postgres``.
    """

    def __init__(self, user: str = "kws", db_name: str = "dagster"):
        self.bin = postgres_bin_dir()
        self.port = free_port()
        self.user = user
        self.password = secrets.token_urlsafe(18)
        self.db_name = db_name
        self.run_as = "postgres" if os.geteuid() == 0 else None
        self.folder = Path(tempfile.mkdtemp(prefix="kws-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.started = False

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        return ["runuser", "-u", self.run_as, "--", *cmd] if self.run_as else cmd

    def _run(self, *args: str) -> None:
        result = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}\n{log}"
            )

    def start(self) -> PostgresServer:
        password_file = self.folder / "pwfile"
        password_file.write_text(self.password + "\n")
        if self.run_as:
            shutil.chown(self.folder, self.run_as)
            shutil.chown(password_file, self.run_as)
        self.folder.chmod(0o700)
        password_file.chmod(0o600)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            self.user,
            f"--pwfile={password_file}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        password_file.unlink()
        options = f"-h {LOCALHOST} -p {self.port} -k {self.folder} -F"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        self.started = True
        import psycopg2

        conn = psycopg2.connect(
            host=LOCALHOST,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname="postgres",
        )
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{self.db_name}"')
        finally:
            conn.close()
        return self

    def stop(self) -> None:
        try:
            if self.started:
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
                self.started = False
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def environment(self) -> dict[str, str]:
        """Variables the instance config below reads (the password is only ever in the env)."""
        return {
            "DAGSTER_PG_HOST": LOCALHOST,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USERNAME": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.db_name,
        }


# The dagster.yaml the PostgreSQL test uses (and README's "Scaling out" shows): run, event-log and
# schedule storage in PostgreSQL, every connection setting from the environment.  The scheme names
# the psycopg2 driver dagster-postgres is written for (SQLAlchemy 2.1 would pick psycopg 3 for a
# bare "postgresql://", whose server-side parameters break dagster's NOTIFY statements).
POSTGRES_DAGSTER_YAML = """\
storage:
  postgres:
    postgres_db:
      scheme: postgresql+psycopg2
      hostname: {env: DAGSTER_PG_HOST}
      port: {env: DAGSTER_PG_PORT}
      username: {env: DAGSTER_PG_USERNAME}
      password: {env: DAGSTER_PG_PASSWORD}
      db_name: {env: DAGSTER_PG_DB}
"""


# ----------------------------------------------------------------------------- Redis and Celery


class RedisServer:
    """Debian's ``redis-server`` on 127.0.0.1, nothing persisted, its files in a temporary folder:
    the Celery broker and result backend of the Celery executor test."""

    def __init__(self):
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError(
                "redis-server not found: install Debian's 'redis-server' "
                "package (.ci/system-deps lists it)"
            )
        self.binary = binary
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="kws-redis-"))
        self.log = self.folder / "server.log"
        self.proc: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://{LOCALHOST}:{self.port}/{db}"

    def _ready(self) -> bool:
        try:
            with socket.create_connection((LOCALHOST, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                LOCALHOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
                "--logfile",
                str(self.log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            cwd=self.folder,
        )
        _wait_until(self._ready, SERVER_START_TIMEOUT_S, "redis-server", self.proc)
        return self

    def stop(self) -> None:
        try:
            _stop_process(self.proc)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def _stop_process(
    proc: subprocess.Popen | None, group: bool = False, timeout_s: float = 20
) -> None:
    """SIGTERM ``proc`` (with ``group``: its whole process group, which it leads), SIGKILL what
    is still there after ``timeout_s``."""
    if proc is None:
        return

    def signal_it(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig) if group else proc.send_signal(sig)

    if proc.poll() is None or group:
        signal_it(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        signal_it(signal.SIGKILL)
        proc.wait()
    if group:  # children (the Celery pool) may outlive the leader for a moment
        deadline = time.monotonic() + timeout_s
        while process_group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if process_group_alive(proc.pid):
            signal_it(signal.SIGKILL)


def process_group_alive(pgid: int) -> bool:
    """Whether any process of the group ``pgid`` is still there."""
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


class CeleryWorker:
    """One Celery worker started as an operator does (``dagster-celery worker start -A
    dagster_celery.app -y celery.yaml``), in its own process group so that stopping it stops its
    pool too.  ``env`` is its whole environment (instance, storage and broker settings);
    ``concurrency`` pool processes, each replaced after one task (a fresh process per step)."""

    def __init__(
        self,
        name: str,
        config_yaml: Path,
        env: dict[str, str],
        log_file: Path,
        cwd: Path,
        concurrency: int = 1,
    ):
        self.name = name
        self.config_yaml = config_yaml
        self.env = env
        self.log_file = log_file
        self.cwd = cwd
        self.concurrency = concurrency
        self.proc: subprocess.Popen | None = None

    @property
    def node_name(self) -> str:
        """What Celery calls the worker in task requests: ``<name>@<host>``."""
        return f"{self.name}@{socket.gethostname()}"

    def _ready(self) -> bool:
        return self.log_file.exists() and " ready." in self.log_file.read_text(errors="replace")

    def start(self) -> CeleryWorker:
        self.launch()
        self.wait_ready()
        return self

    def launch(self) -> None:
        """Start the worker without waiting for it (:meth:`wait_ready` waits)."""
        bin_dir = str(Path(sys.executable).parent)  # dagster-celery runs `celery` from PATH
        env = {**self.env, "PATH": bin_dir + os.pathsep + self.env.get("PATH", os.defpath)}
        command = [
            str(Path(bin_dir) / "dagster-celery"),
            "worker",
            "start",
            "-A",
            "dagster_celery.app",
            "-y",
            str(self.config_yaml),
            "-n",
            self.name,
            "-i",
            "kws_assets.definitions",
            "--loglevel",
            "INFO",
            "--",
            f"--concurrency={self.concurrency}",
            "--max-tasks-per-child=1",
            "--without-gossip",
            "--without-mingle",
        ]
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                command,
                env=env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self) -> None:
        """Wait until the worker listens to the broker; fail with its log if it does not."""
        try:
            _wait_until(
                self._ready, SERVER_START_TIMEOUT_S, f"celery worker {self.name}", self.proc
            )
        except (RuntimeError, TimeoutError) as exc:
            log = self.log_file.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"{exc}; its log ({self.log_file}):\n{log}") from None

    def stop(self) -> None:
        _stop_process(self.proc, group=True)

    def __enter__(self) -> CeleryWorker:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


# The `-y` file of `dagster-celery worker start`: the executor's config block, which the
# worker turns into Celery settings (broker_url, result_backend) before it starts.
CELERY_WORKER_YAML = """\
execution:
  config:
    broker: {env: DAGSTER_CELERY_BROKER_URL}
    backend: {env: DAGSTER_CELERY_BACKEND_URL}
"""
