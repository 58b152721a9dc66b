#!/usr/bin/env python3
"""Chaos/soak run from the command line: the engine in tests/chaos_engine.py (the
same code the suite's 20-second `tests/test_chaos.py` runs), for as long as
you like. 127.0.0.1 only; stops by itself after the max measurement and
`--duration` seconds of load.

    .venv/bin/python bench/chaos.py --duration 600          # the 10-minute soak
    .venv/bin/python bench/chaos.py --duration 60 --json out.json

Builds tests/apps/chaos twice (cached), serves both builds' apps from one
config file with the release binary ($WASMHOST_BIN, else
target/release/wasmhost, copied first so a rebuild cannot swap it), prints
the report and exits 1 if any check failed (or the server did not exit 0).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import chaos_engine as chaos  # noqa: E402
from wasmhost_testing import ROOT, ServerError  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600, help="seconds of load (default 600)")
    parser.add_argument("--max-seconds", type=float, default=3.0, help="seconds of max-throughput measurement")
    parser.add_argument("--load-fraction", type=float, default=0.8, help="target rate as a fraction of the max")
    parser.add_argument("--reload-every", type=float, default=3.0, help="seconds between module swaps")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before the RSS baseline (default 20%%, 4-30 s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (server log in server.log)")
    args = parser.parse_args()

    binary = Path(os.environ.get("WASMHOST_BIN") or ROOT / "target" / "release" / "wasmhost")
    workdir = Path(tempfile.mkdtemp(prefix="wasmhost-chaos-"))
    snapshot = workdir / "wasmhost"
    shutil.copy2(binary, snapshot)
    builds = chaos.build_versions(snapshot, workdir / "builds")
    server = chaos.chaos_server(snapshot, workdir, builds)
    stop_error = None
    with server:
        report = chaos.run_chaos(
            server, workdir, builds, args.duration, max_seconds=args.max_seconds,
            load_fraction=args.load_fraction, reload_every=args.reload_every, warmup=args.warmup,
            seed=args.seed,
        )
        log = server.log()
        try:
            server.stop()
        except ServerError as err:
            stop_error = str(err).splitlines()[0]
    if stop_error:
        report.fail(f"server did not stop cleanly: {stop_error}")
    print(report.text())
    if args.json:
        args.json.write_text(json.dumps(report.as_json(), indent=1, default=str))
    if args.keep:
        (workdir / "server.log").write_text(log)
        print(f"work directory: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if report.failure_count else 0


if __name__ == "__main__":
    sys.exit(main())
