#!/usr/bin/env python3
"""Guest faults and hostile HTTP against wasmhost and `wasmtime serve`, side
by side, on 127.0.0.1. For documentation (docs/reliability.md), not a test.

    .venv/bin/python bench/faults_compare.py                 # all three servers
    .venv/bin/python bench/faults_compare.py --only wasmhost
    .venv/bin/python bench/faults_compare.py --wasmhost PATH --wasmtime PATH

Every server serves the `faults` test guest (tests/guests/faults, built with
scripts/build_guest.py) and is started fresh, alone:

  wasmhost            --max-instances 1 --memory-limit 64MiB
                      --request-timeout 1s --header-read-timeout 2s
  wasmtime            `wasmtime serve -S cli=y` with its defaults
  wasmtime-limits     `wasmtime serve -S cli=y -W max-memory-size=64MiB
                      -W timeout=1s` (the nearest equivalent flags)

For each case it records what the client got (status, or how the
connection ended) and how long it took, whether the process is still
running, and whether a plain `GET /ok` right after is answered. Runaway
cases (`/sleep`, `/loop`) come last, since a server without a timeout keeps
running them. Client waits are capped (CLIENT_TIMEOUT), so an unbounded
guest shows as "no answer". Warning: without a memory limit, `/oom` grows
`wasmtime serve` to the 4 GiB wasm32 maximum.

Prints a markdown table, one row per case, one column per server.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from wasmhost_testing import read_response, recv_until_eof, request_head  # noqa: E402

CLIENT_TIMEOUT = 5.0
"""Longest a client waits for any answer."""

START_TIMEOUT = 300.0
"""Longest a server may take to listen (wasmtime serve compiles the
component on every start)."""

PORT = 18790


def build_faults() -> Path:
    """The faults component, built (or taken from the cache)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_guest.py"), str(ROOT / "tests" / "guests" / "faults")],
        check=True, capture_output=True, text=True,
    ).stdout
    return Path(out.strip().splitlines()[-1])


def servers(wasmhost: str, wasmtime: str, component: Path) -> dict[str, list[str]]:
    """Name -> command line (PORT is substituted at start)."""
    addr = f"127.0.0.1:{PORT}"
    return {
        "wasmhost": [
            wasmhost, "serve", str(component), "--addr", addr, "--no-admin",
            "--cache-dir", str(ROOT / "target" / "wasmhost-cache"),
            "--max-instances", "1", "--memory-limit", "64MiB",
            "--request-timeout", "1s", "--header-read-timeout", "2s",
        ],
        "wasmtime": [wasmtime, "serve", "-S", "cli=y", "--addr", addr, str(component)],
        "wasmtime-limits": [
            wasmtime, "serve", "-S", "cli=y", "-W", f"max-memory-size={64 << 20}", "-W", "timeout=1s",
            "--addr", addr, str(component),
        ],
    }


# -- one server -------------------------------------------------------------


class Proc:
    """A server process: started, probed, observed, stopped."""

    def __init__(self, command: list[str], log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {self.proc.returncode}:\n{log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{command[0]} did not listen within {START_TIMEOUT} s")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def status_kib(self, field: str) -> int:
        """VmRSS / VmHWM of the process, in KiB (0 once it has exited)."""
        try:
            with open(f"/proc/{self.proc.pid}/status") as status:
                for line in status:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s (a server running a guest that
        never ends may not drain)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def exchange(data: bytes, timeout: float = CLIENT_TIMEOUT) -> tuple[str, float]:
    """Sends `data` on a new connection; describes the first response (or
    how the connection ended) and the seconds it took."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", PORT), timeout=timeout) as sock:
            try:
                sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            response = read_response(sock, timeout=timeout)
        outcome = str(response.status)
        if "chunked" in response.headers.get("transfer-encoding", ""):
            ending = "terminated" if response.complete else "cut"
            outcome += f", {len(response.body) // 1024} KiB chunked body {ending}"
        elif not response.complete:
            outcome += ", body cut"
    except (TimeoutError, socket.timeout):
        outcome = f"no answer in {timeout:.0f} s"
    except ConnectionRefusedError:
        outcome = "refused"
    except (ConnectionError, OSError) as error:
        outcome = "closed, no response" if "before a response head" in str(error) else type(error).__name__
    return outcome, time.monotonic() - started


def statuses_until_close(data: bytes, timeout: float = 3.0) -> str:
    """Sends `data` and reads for up to `timeout` seconds or until the
    server closes: the statuses of every response on the connection (two
    means the request hidden in the body ran as a request of its own), and
    whether the connection was closed or kept open."""
    received, closed = b"", "kept open"
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", PORT), timeout=timeout) as sock:
        sock.sendall(data)
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(1 << 16)
            except (TimeoutError, socket.timeout):
                break
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                closed = "closed"
                break
            received += chunk
    statuses = re.findall(rb"HTTP/1\.[01] (\d{3}) ", received)
    return f"{'+'.join(s.decode() for s in statuses) or 'none'}, {closed}"


def idle_close(timeout: float = CLIENT_TIMEOUT) -> str:
    """How long a connection that sends nothing stays open."""
    with socket.create_connection(("127.0.0.1", PORT), timeout=timeout) as sock:
        try:
            _, elapsed = recv_until_eof(sock, timeout)
            return f"closed after {elapsed:.1f} s"
        except AssertionError:
            return f"open after {timeout:.0f} s"


# -- cases ----------------------------------------------------------------------

SMUGGLED = b"GET /count HTTP/1.1\r\nHost: x\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"


def get(path: str) -> bytes:
    return request_head("GET", path, {"connection": "close"})


def big_header(size: int) -> bytes:
    return request_head("GET", "/ok", {"x-pad": "a" * size, "connection": "close"})


FAULTS = [
    ("GET /ok", "/ok"),
    ("uncaught exception (/raise)", "/raise"),
    ("memory bomb (/oom)", "/oom"),
    ("stack exhaustion (/recurse)", "/recurse"),
    ("no response (/noresponse)", "/noresponse"),
    ("failure after headers", "/fail-after-headers"),
]

RUNAWAYS = [
    ("sleep 10 s (/sleep)", "/sleep?ms=10000"),
    ("CPU loop (/loop)", "/loop"),
]

HTTP_CASES = [
    ("malformed request line", lambda: exchange(b"GARBAGE\r\n\r\n")[0]),
    ("NUL in a header value", lambda: exchange(b"GET /ok HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n")[0]),
    ("two Host lines", lambda: exchange(b"GET /ok HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n")[0]),
    ("CL+TE, request hidden in body", lambda: statuses_until_close(
        b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n"
        % (len(LAST_CHUNK) + len(SMUGGLED)) + LAST_CHUNK + SMUGGLED)),
    ("two different Content-Lengths", lambda: statuses_until_close(
        b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED)
        + SMUGGLED)),
    ("40 KiB header", lambda: exchange(big_header(40 << 10))[0]),
    ("100 KiB header", lambda: exchange(big_header(100 << 10))[0]),
    ("1 MiB header", lambda: exchange(big_header(1 << 20))[0]),
    ("idle connection (sends nothing)", idle_close),
]


def run_server(name: str, command: list[str], workdir: Path) -> dict[str, str]:
    """Every case against one freshly started server: case -> cell."""
    cells: dict[str, str] = {}
    proc = Proc(command, workdir / f"{name}.log")
    try:
        cells["start RSS"] = f"{proc.status_kib('VmRSS') // 1024} MiB"

        def after(outcome: str, elapsed: float) -> str:
            if not proc.alive():
                return f"{outcome} ({elapsed:.2f} s); process died"
            next_outcome, next_elapsed = exchange(get("/ok"))
            return f"{outcome} ({elapsed:.2f} s); next /ok {next_outcome}"

        for label, path in FAULTS:
            cells[label] = after(*exchange(get(path), timeout=20 if path == "/oom" else CLIENT_TIMEOUT))
            if path == "/oom":
                cells["peak RSS after /oom"] = f"{proc.status_kib('VmHWM') // 1024} MiB"
        for label, case in HTTP_CASES:
            cells[label] = case() if proc.alive() else "process died"
        for label, path in RUNAWAYS:
            cells[label] = after(*exchange(get(path)))
        cells["end RSS"] = f"{proc.status_kib('VmRSS') // 1024} MiB" if proc.alive() else "-"
    finally:
        proc.stop()
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wasmhost", default=str(ROOT / "target" / "release" / "wasmhost"))
    parser.add_argument("--wasmtime", default=shutil.which("wasmtime") or os.path.expanduser("~/.cargo/bin/wasmtime"))
    parser.add_argument("--only", nargs="*", help="server names to run")
    args = parser.parse_args()

    component = build_faults()
    workdir = Path(tempfile.mkdtemp(prefix="faults-compare-"))
    # Run a copy, so a rebuild of target/release/wasmhost cannot swap it mid-run.
    wasmhost = workdir / "wasmhost"
    shutil.copy2(args.wasmhost, wasmhost)
    version = subprocess.run([args.wasmtime, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"component {component.name}; {version}; logs in {workdir}", file=sys.stderr)

    results = {}
    for name, command in servers(str(wasmhost), args.wasmtime, component).items():
        if args.only and name not in args.only:
            continue
        print(f"running {name} ...", file=sys.stderr)
        results[name] = run_server(name, command, workdir)

    rows = list(dict.fromkeys(key for cells in results.values() for key in cells))
    names = list(results)
    print("| case | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for row in rows:
        print(f"| {row} | " + " | ".join(results[name].get(row, "") for name in names) + " |")


if __name__ == "__main__":
    main()
