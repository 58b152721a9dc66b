#!/usr/bin/env python3
"""A guest flooding outbound requests, on 127.0.0.1: what it costs the
process and the other tenants. For documentation (docs/reliability.md), not
a test (tests/test_outbound.py has the test).

    .venv/bin/python bench/outbound_flood.py target/release/wasmhost
    .venv/bin/python bench/outbound_flood.py /work/bin/wasmhost-before --max-open-files 1024

One `serve --config` with two apps running tests/apps/fetch: `flood` starts
2,000 GETs without waiting for any (its `/burst` route) to a local service
that accepts and never answers, and holds them for 4 s; meanwhile `other`,
and `flood` on its second instance, each fetch from a normal local service.
Prints, as JSON: the server's open descriptors before and at their peak,
what the guest's 2,000 requests became, the two other requests' status and
time, the admin listener's answer, and how many accept failures were logged.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_outbound import Holder, Upstream, burst  # noqa: E402
from wasmhost_testing import Server  # noqa: E402

APP = ROOT / "tests" / "apps" / "fetch" / "app.py"


def timed(call) -> str:
    started = time.monotonic()
    try:
        status = call()[0]
    except OSError as err:
        status = repr(err)
    return f"{status} in {(time.monotonic() - started) * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary", type=Path)
    parser.add_argument("--max-open-files", type=int, help="RLIMIT_NOFILE of the server")
    args = parser.parse_args()
    with Holder("silent") as holder, Upstream() as upstream, tempfile.TemporaryDirectory() as tmp:
        allow = f'allowed_outbound = ["http://127.0.0.1:{holder.port}", "http://127.0.0.1:{upstream.port}"]'
        apps = [("flood", "/f", 2), ("other", "/o", 1)]
        config = Path(tmp) / "wasmhost.toml"
        config.write_text(
            "".join(
                f'[[app]]\nname = "{name}"\nmodule = "{APP}"\nprefix = "{prefix}"\nstrip_prefix = true\n'
                f"max_instances = {instances}\n{allow}\n\n"
                for name, prefix, instances in apps
            )
        )
        normal = urllib.parse.quote(f"http://127.0.0.1:{upstream.port}/ok", safe="")
        with Server(args.binary, "", [], config=config, start_timeout=600, max_open_files=args.max_open_files) as server:

            def fds() -> int:
                return len(os.listdir(f"/proc/{server.pid}/fd"))

            before = peak = fds()
            result: list = []
            target = f"http://127.0.0.1:{holder.port}/"
            flood = threading.Thread(
                target=lambda: result.append(burst(server, "/f", url=target, n=2000, settle_ms=500, hold_ms=4000))
            )
            started = time.monotonic()
            flood.start()
            while flood.is_alive() and time.monotonic() - started < 3:
                peak = max(peak, fds())
                time.sleep(0.05)
            other = timed(lambda: server.request("GET", f"/o/get?url={normal}", timeout=5))
            same = timed(lambda: server.request("GET", f"/f/get?url={normal}", timeout=5))
            admin = timed(lambda: server.admin_request("GET", "/healthz", timeout=5))
            flood.join(60)
            log = server.log()
        report = {
            "binary": str(args.binary),
            "max_open_files": args.max_open_files,
            "descriptors": {"before": before, "peak": peak},
            "flood": result[0][0] if result else None,
            "other_app": other,
            "same_app_other_instance": same,
            "admin_healthz": admin,
            "accept_failures_logged": log.count("accept failed") + log.count("cannot accept connections"),
        }
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
