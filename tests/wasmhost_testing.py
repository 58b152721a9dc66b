"""Helpers for the wasmhost integration tests (standard library only).

`Server` runs one `wasmhost serve` process on 127.0.0.1 with an ephemeral
port and talks to it over real sockets. The raw-socket helpers at the end
(`raw_request`, `read_response`) send exactly the bytes a test asks for and
parse the response by hand, so a test can see framing details (an unfinished
chunked body, an early response) that `http.client` would hide.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

ROOT = Path(__file__).resolve().parent.parent
"""The repository root."""

SHARED_CACHE_DIR = ROOT / "target" / "wasmhost-cache"
"""Compile cache shared by all test servers: each guest is compiled once."""

START_TIMEOUT = 120.0
"""Seconds a server may take to log its listening line (a cold compile)."""

STOP_TIMEOUT = 30.0
"""Seconds a server may take to exit after SIGTERM/SIGINT."""

KIB = 1024
MIB = 1024 * KIB

_SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
_ADMIN = re.compile(r"admin API on http://[0-9.]+:(\d+)")


def dies_with_parent(command: list[str]) -> list[str]:
    """`command` run so that the kernel kills it (SIGKILL) when the process
    that started it dies, however it dies: a server or client left behind by
    a pytest that was killed or crashed cannot outlive it.

    `setpriv --pdeathsig` (util-linux) sets the parent-death signal and
    execs the command, so the child keeps its pid. The signal follows the
    *thread* that started the child: start children from the main thread
    (as fixtures and tests do), not from a thread that ends before them.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise AssertionError("setpriv (util-linux) is needed to tie test servers to the test run")
    return [setpriv, "--pdeathsig", "KILL", "--", *command]


def unique_id(label: str) -> str:
    """A request id (`label` plus random hex) no other request uses."""
    return f"{label}-{uuid.uuid4().hex[:12]}"


class ServerError(AssertionError):
    """The server did not start, crashed, or did not stop cleanly."""


class _StreamCollector:
    """Reads a pipe to EOF on a daemon thread, keeping the text for tests."""

    def __init__(self, pipe, name: str) -> None:
        self._pipe = pipe
        self._lines: list[str] = []
        self._eof = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for raw in iter(self._pipe.readline, b""):
                with self._cond:
                    self._lines.append(raw.decode("utf-8", "replace"))
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def text(self) -> str:
        """Everything read so far."""
        with self._cond:
            return "".join(self._lines)

    def wait_for(self, pattern: str | re.Pattern, timeout: float) -> re.Match | None:
        """The first line matching `pattern`, waiting up to `timeout` seconds
        for it; None on timeout or when the stream ends without one."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        checked = 0
        with self._cond:
            while True:
                for line in self._lines[checked:]:
                    match = regex.search(line)
                    if match:
                        return match
                checked = len(self._lines)
                remaining = deadline - time.monotonic()
                if self._eof or remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class Server:
    """A `wasmhost serve` process, used as a context manager.

    ``with Server(binary, app, ["--max-instances", "1"]) as server:`` starts
    the binary bound to 127.0.0.1 on an ephemeral port, with the shared
    compile cache unless `cache_dir` says otherwise, the test run's
    environment (or `env` instead) with `extra_env` added, and at most
    `max_open_files` descriptors when given, and waits for its listening
    line. Leaving the block sends SIGTERM and fails unless the process exits
    with status 0 within `STOP_TIMEOUT` seconds (it is killed with SIGKILL if
    it does not exit at all), unless the test waited for the exit itself
    (`wait_exit`) and so checks the status. The process dies with the test
    run (`dies_with_parent`).
    """

    def __init__(
        self,
        binary: Path,
        app: Path | str,
        args: Iterable[str] = (),
        *,
        cache_dir: Path | None = SHARED_CACHE_DIR,
        start_timeout: float = START_TIMEOUT,
        subcommand: str = "serve",
        cwd: Path | None = None,
        config: Path | None = None,
        admin_addr: str = "127.0.0.1:0",
        env: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        max_open_files: int | None = None,
    ) -> None:
        self.subcommand = subcommand
        self.admin_addr = admin_addr
        self.env = env
        self.max_open_files = max_open_files
        self.binary = Path(binary)
        self.app = app
        self.cwd = cwd
        self.config = config
        self.args = list(args)
        self.extra_env = dict(extra_env or {})
        self.cache_dir = cache_dir
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.admin_port: int | None = None
        self.proc: subprocess.Popen | None = None
        self._stderr: _StreamCollector | None = None
        self._stdout: _StreamCollector | None = None
        self._signalled = False
        self._exit_awaited = False
        self._memory_pool: tuple[int, int] | None = None

    # -- lifecycle ---------------------------------------------------------

    def command(self) -> list[str]:
        """The command line the server runs with."""
        target = ["--config", str(self.config)] if self.config is not None else [str(self.app)]
        command = [str(self.binary), self.subcommand, *target, "--addr", "127.0.0.1:0", "--admin-addr", self.admin_addr]
        if self.cache_dir is not None:
            command += ["--cache-dir", str(self.cache_dir)]
        return command + self.args

    def start(self) -> "Server":
        """Starts the process and waits until it listens."""
        base = os.environ if self.env is None else self.env
        env = {k: v for k, v in base.items() if k not in ("WASMHOST_LOG", "WASMHOST_CACHE_DIR")}
        env.update(self.extra_env)
        self.proc = subprocess.Popen(
            dies_with_parent(self.command()),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=self.cwd,
            # Keep a Ctrl-C aimed at pytest away from the servers: the tests
            # decide which signal each server gets.
            start_new_session=True,
            preexec_fn=self._limit_open_files if self.max_open_files is not None else None,
        )
        self._stderr = _StreamCollector(self.proc.stderr, f"wasmhost-{self.proc.pid}-stderr")
        self._stdout = _StreamCollector(self.proc.stdout, f"wasmhost-{self.proc.pid}-stdout")
        match = self._stderr.wait_for(_LISTENING, self.start_timeout)
        if match is None:
            exited = self.proc.poll()
            if exited is None:
                self._kill()
            raise ServerError(
                f"wasmhost did not log its listening line within {self.start_timeout:.0f} s "
                f"(exit status {exited}); command: {' '.join(self.command())}\n{self.log()}"
            )
        self.port = int(match.group(1))
        admin = self._stderr.wait_for(_ADMIN, 0)
        self.admin_port = int(admin.group(1)) if admin else None
        # Locate guest memory now, while the server is idle (see `memory`).
        self._memory_pool = linear_memory_pool(self.pid)
        return self

    def _limit_open_files(self) -> None:
        """In the child before exec: RLIMIT_NOFILE to `max_open_files`."""
        import resource  # noqa: PLC0415 (only where a test asks for it)

        resource.setrlimit(resource.RLIMIT_NOFILE, (self.max_open_files, self.max_open_files))

    def send_signal(self, sig: int) -> None:
        """Sends `sig` to the server process."""
        assert self.proc is not None, "server not started"
        self.proc.send_signal(sig)
        if sig in (signal.SIGTERM, signal.SIGINT):
            self._signalled = True

    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int:
        """Waits for the process to exit and returns its status, which the
        caller checks (`stop` then no longer requires 0); kills it and fails
        if it is still running after `timeout` seconds."""
        self._exit_awaited = True
        return self._wait(timeout)

    def _wait(self, timeout: float) -> int:
        assert self.proc is not None, "server not started"
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise ServerError(
                f"wasmhost (pid {self.proc.pid}) did not exit within {timeout:.0f} s; "
                f"killed with SIGKILL\n{self.log()}"
            ) from None
        self._stderr.join(5)
        self._stdout.join(5)
        return status

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> None:
        """Sends `sig` (unless the server was signalled already: a second
        signal means "exit without draining") and requires exit status 0."""
        if self.proc is None:
            return
        if self.proc.poll() is None and not self._signalled:
            self.send_signal(sig)
        status = self._wait(timeout)
        if status != 0 and not self._exit_awaited:
            raise ServerError(f"wasmhost exited with status {status}, expected 0\n{self.log()}")

    def _kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc is None:
            self.stop()
            return
        # The test already failed: stop anyway, but keep its failure as the
        # headline and only note a bad exit.
        try:
            self.stop()
        except ServerError as stop_error:
            exc.add_note(f"while stopping the server: {stop_error}")

    # -- observation -------------------------------------------------------

    @property
    def pid(self) -> int:
        assert self.proc is not None, "server not started"
        return self.proc.pid

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        """The server's stderr (its log) so far."""
        return self._stderr.text() if self._stderr else ""

    def stdout(self) -> str:
        """The server's stdout so far."""
        return self._stdout.text() if self._stdout else ""

    def wait_for_log(self, pattern: str, timeout: float = 5.0) -> re.Match:
        """The first log line matching `pattern`; fails after `timeout` s.

        Access log lines are written when a response body is done, which can
        be a moment after the client has read it: tests wait, never race.
        """
        match = self._stderr.wait_for(pattern, timeout)
        if match is None:
            raise AssertionError(f"no log line matching {pattern!r} within {timeout} s:\n{self.log()}")
        return match

    def _proc_status(self, field_name: str) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
        raise AssertionError(f"/proc/{self.pid}/status has no {field_name}")

    def memory(self) -> MemoryUsage:
        """The server's resident memory, split into guest linear memory and
        the rest (see `MemoryUsage`)."""
        if self._memory_pool is None:
            self._memory_pool = linear_memory_pool(self.pid)
        low, high = self._memory_pool
        mappings = _mappings(self.pid)
        return MemoryUsage(
            total_kib=sum(rss for _, _, _, rss in mappings),
            guest_kib=sum(rss for start, _, _, rss in mappings if low <= start < high),
        )

    def rss_kib(self) -> int:
        """Resident set size of the server, in KiB."""
        return self._proc_status("VmRSS")

    def peak_rss_kib(self) -> int:
        """Peak resident set size since start or `reset_peak_rss`, in KiB."""
        return self._proc_status("VmHWM")

    def reset_peak_rss(self) -> bool:
        """Resets the kernel's peak RSS counter; False if not permitted."""
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as clear_refs:
                clear_refs.write("5")
            return True
        except OSError:
            return False

    # -- requests ----------------------------------------------------------

    def connection(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        """A new (unconnected) HTTP/1.1 client connection to the server."""
        assert self.port is not None, "server not started"
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One request on a new connection: (status, headers, body).

        `headers` of the result is case-insensitive. An iterable `body` is
        sent with chunked transfer encoding.
        """
        conn = self.connection(timeout)
        try:
            chunked = body is not None and not isinstance(body, (bytes, bytearray))
            conn.request(method, path, body=body, headers=dict(headers or {}), encode_chunked=chunked)
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def timed_request(self, method: str, path: str, **kwargs) -> tuple[float, int, http.client.HTTPMessage, bytes]:
        """`request`, also returning the seconds it took."""
        started = time.monotonic()
        status, headers, body = self.request(method, path, **kwargs)
        return time.monotonic() - started, status, headers, body

    def admin_request(self, method: str, path: str, timeout: float = 10.0) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One request to the admin listener: (status, headers, body)."""
        assert self.admin_port is not None, "server has no admin listener"
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=timeout)
        try:
            # Admin POSTs must not be requests a web page could send unasked.
            conn.request(method, path, headers={"Content-Type": "application/json"} if method == "POST" else {})
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def metrics(self) -> dict[tuple[str, frozenset], float]:
        """The admin listener's Prometheus metrics (see `parse_metrics`)."""
        status, _, body = self.admin_request("GET", "/metrics")
        assert status == 200, body
        return parse_metrics(body.decode())

    def busy_instances(self) -> int:
        """Instances busy with a request right now, over all apps."""
        return int(sum(value for (name, labels), value in self.metrics().items()
                       if name == "wasmhost_instances" and ("state", "busy") in labels))

    def wait_for_busy(self, count: int, timeout: float = 10.0) -> None:
        """Waits until exactly `count` instances are busy (requests sent in
        the background have reached their guests); fails after `timeout` s."""
        deadline = time.monotonic() + timeout
        while (busy := self.busy_instances()) != count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{busy} instances busy after {timeout} s, expected {count}")
            time.sleep(0.01)

    def open_raw(self, timeout: float = 10.0) -> socket.socket:
        """A raw TCP connection to the server."""
        assert self.port is not None, "server not started"
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)


def parse_metrics(text: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus text format → {(name, labels): value}; fails on a line
    that is neither a comment nor a sample."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a Prometheus sample: {line!r}"
        labels = frozenset(_LABEL.findall(match["labels"] or ""))
        samples[(match["name"], labels)] = float(match["value"])
    return samples


def metric_value(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    """The sample `name` with exactly `labels` (0 when absent)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


@dataclass
class MemoryUsage:
    """Resident memory of a wasmhost process, in KiB.

    `guest_kib` is what is resident in the pooling allocator's linear-memory
    reservation (see `linear_memory_pool`): the instances' heaps. `host_kib`
    is everything else: the server's own heap (where it would buffer request
    or response bodies), code, stacks.
    """

    total_kib: int
    guest_kib: int

    @property
    def host_kib(self) -> int:
        return self.total_kib - self.guest_kib


def _mappings(pid: int) -> list[tuple[int, int, str, int]]:
    """The process's mappings from /proc/PID/smaps: (start, end, name, rss KiB)."""
    mappings = []
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            head = line.split()
            if re.fullmatch(r"[0-9a-f]+-[0-9a-f]+", head[0]):
                start, end = (int(address, 16) for address in head[0].split("-"))
                mappings.append([start, end, head[5] if len(head) > 5 else "", 0])
            elif head[0] == "Rss:":
                mappings[-1][3] = int(head[1])
    return [tuple(mapping) for mapping in mappings]


def linear_memory_pool(pid: int) -> tuple[int, int]:
    """The address range wasmtime's pooling allocator reserved for linear
    memories: the largest run of address-adjacent anonymous (or
    ``memfd:wasm-memory-image``) mappings, tens of GiB of mostly inaccessible
    address space. The range is fixed for the life of the process; the
    mappings inside it change as memories grow, so it is taken from two
    identical readings.
    """
    previous = None
    for _ in range(10):
        runs = []  # (size, start, end) of adjacent candidate mappings
        run = None
        for start, end, name, _ in _mappings(pid):
            candidate = name == "" or name.startswith("/memfd:wasm-memory-image")
            if candidate and run is not None and run[1] == start:
                run[1] = end
                continue
            if run is not None:
                runs.append((run[1] - run[0], run[0], run[1]))
            run = [start, end] if candidate else None
        if run is not None:
            runs.append((run[1] - run[0], run[0], run[1]))
        _, low, high = max(runs)
        if (low, high) == previous:
            return low, high
        previous = (low, high)
    raise AssertionError(f"cannot find the linear memory pool of process {pid}")


class BackgroundRequest:
    """`Server.request` run on a thread, for requests that must overlap.

    ``started`` is the monotonic time the request began; after `join`,
    ``result`` holds ``(status, headers, body)`` and ``elapsed`` its duration,
    or ``error`` holds the exception it raised.
    """

    def __init__(self, server: Server, method: str, path: str, **kwargs) -> None:
        self.result: tuple[int, http.client.HTTPMessage, bytes] | None = None
        self.error: BaseException | None = None
        self.elapsed: float | None = None
        self.started = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, args=(server, method, path, kwargs), daemon=True
        )
        self._thread.start()

    def _run(self, server: Server, method: str, path: str, kwargs) -> None:
        try:
            self.result = server.request(method, path, **kwargs)
        except BaseException as error:  # reported by join()
            self.error = error
        finally:
            self.elapsed = time.monotonic() - self.started

    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self, timeout: float) -> tuple[int, http.client.HTTPMessage, bytes]:
        """Waits for the request and returns its result (or re-raises)."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"background request still running after {timeout} s")
        if self.error is not None:
            raise self.error
        return self.result


# -- raw HTTP/1.1 -----------------------------------------------------------


@dataclass
class RawResponse:
    """An HTTP/1.1 response as read off a socket.

    `complete` is True only when the body ended as its framing says it must:
    all `Content-Length` bytes, the terminating zero-size chunk of a chunked
    body, or EOF for a close-delimited body.
    """

    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    complete: bool = False


class _SocketReader:
    """Buffered reads from a socket against an overall deadline.

    A reset connection counts as EOF: an aborted response may end either way.
    """

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.deadline = time.monotonic() + timeout
        self.buf = bytearray()
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out reading the response")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(256 * KIB)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def until(self, separator: bytes) -> bytes | None:
        """Bytes up to and including `separator`; None if EOF comes first."""
        while (index := self.buf.find(separator)) < 0:
            if not self._fill():
                return None
        end = index + len(separator)
        data = bytes(self.buf[:end])
        del self.buf[:end]
        return data

    def exactly(self, size: int) -> bytes:
        """`size` bytes, or fewer if EOF comes first."""
        while len(self.buf) < size and self._fill():
            pass
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data

    def rest(self) -> bytes:
        """Everything up to EOF."""
        while self._fill():
            pass
        data = bytes(self.buf)
        self.buf.clear()
        return data


def read_response(sock: socket.socket, timeout: float = 10.0) -> RawResponse:
    """Reads one response from `sock` (which carried one request).

    Fails if the connection ends before a complete response head.
    """
    return _read_one(_SocketReader(sock, timeout))


def read_responses(sock: socket.socket, count: int, timeout: float = 10.0) -> list[RawResponse]:
    """Reads up to `count` pipelined responses from `sock`, in order, each
    framed as its head says; fewer when the connection ends first."""
    reader = _SocketReader(sock, timeout)
    responses = []
    for _ in range(count):
        try:
            responses.append(_read_one(reader))
        except ConnectionError:
            break
    return responses


def _read_one(reader: "_SocketReader") -> RawResponse:
    """The next response from `reader`."""
    head = reader.until(b"\r\n\r\n")
    if head is None:
        raise ConnectionError(f"connection closed before a response head (got {bytes(reader.buf)!r})")
    status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
    version, status, *reason = status_line.split(" ", 2)
    assert version.startswith("HTTP/1."), f"not an HTTP/1 status line: {status_line!r}"
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    response = RawResponse(int(status), reason[0] if reason else "", headers)

    if response.status in (204, 304) or response.status < 200:
        response.complete = True  # no body, whatever the head says (RFC 9112 §6.3)
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        response.body, response.complete = _read_chunked(reader)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        response.body = reader.exactly(length)
        response.complete = len(response.body) == length
    else:
        response.body, response.complete = reader.rest(), True
    return response


def _read_chunked(reader: _SocketReader) -> tuple[bytes, bool]:
    """Decodes a chunked body: (data, whether the last-chunk was seen)."""
    chunks = []
    while True:
        size_line = reader.until(b"\r\n")
        if size_line is None:
            return b"".join(chunks), False
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError:
            raise AssertionError(f"malformed chunk size line {size_line!r}") from None
        if size == 0:
            # Optional trailer fields, then the empty line ending the body.
            while True:
                line = reader.until(b"\r\n")
                if line is None:
                    return b"".join(chunks), False
                if line == b"\r\n":
                    return b"".join(chunks), True
        data = reader.exactly(size)
        chunks.append(data)
        if len(data) < size or reader.exactly(2) != b"\r\n":
            return b"".join(chunks), False


def raw_request(server: Server, data: bytes, timeout: float = 10.0) -> RawResponse:
    """Sends `data` verbatim on a new connection and reads one response."""
    with server.open_raw(timeout) as sock:
        sock.sendall(data)
        return read_response(sock, timeout)


def request_head(method: str, path: str, headers: Mapping[str, str] = (), host: str = "localhost") -> bytes:
    """An HTTP/1.1 request head (request line, Host, `headers`, blank line)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in dict(headers).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunked(chunks: Iterable[bytes]) -> bytes:
    """`chunks` framed with chunked transfer encoding, last-chunk included."""
    framed = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks if chunk)
    return framed + b"0\r\n\r\n"


def recv_until_eof(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Reads until the peer closes: (bytes read, seconds until EOF).

    Fails if the connection is still open after `timeout` seconds.
    """
    started = time.monotonic()
    reader = _SocketReader(sock, timeout)
    try:
        data = reader.rest()
    except (TimeoutError, socket.timeout):
        raise AssertionError(f"connection still open after {timeout} s") from None
    return data, time.monotonic() - started


class Redis:
    """A `redis-server` on 127.0.0.1 with nothing saved to disk."""

    def __init__(self, tmp: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise AssertionError("redis-server is needed (apt-get install redis-server; .ci/run installs it)")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.command = dies_with_parent(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp)]
        )
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "Redis":
        self.proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def get(self, key: str) -> bytes | None:
        """The value of `key` (GET), with a raw RESP request."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(f"GET {key}\r\n".encode())
            data = b""
            while b"\r\n" not in data:
                data += conn.recv(65536)
            head, _, rest = data.partition(b"\r\n")
            if head == b"$-1":
                return None
            size = int(head[1:])
            while len(rest) < size + 2:
                rest += conn.recv(65536)
            return rest[:size]

    def keys(self) -> list[bytes]:
        """Every key in the server (KEYS *), with a raw RESP request."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(b"KEYS *\r\n")
            data = b""
            while True:
                data += conn.recv(65536)
                lines = data.split(b"\r\n")
                count = int(lines[0][1:])
                if len(lines) >= 2 * count + 2:
                    return sorted(lines[2 : 2 * count + 1 : 2])
