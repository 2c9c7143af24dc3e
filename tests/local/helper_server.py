"""A stand-in for a server that spawns helpers: used to test supervision on real processes.

Usage: python helper_server.py PORT [--orphan] [--never-healthy]

It starts one child that sleeps (like a uvicorn worker) and, with ``--orphan``, a grandchild whose parent
exits at once, so it is re-parented to init but stays in our session (like MLflow's huey_consumer). Then it
serves ``GET /health`` on 127.0.0.1:PORT (503 with ``--never-healthy``). It writes every helper PID to stdout.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys


def main() -> None:
    port = int(sys.argv[1])
    healthy = "--never-healthy" not in sys.argv
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print(f"worker {worker.pid}", flush=True)
    if "--orphan" in sys.argv:
        # The middle process starts the sleeper and exits: the sleeper is re-parented, same session.
        middle = subprocess.run(
            [
                sys.executable,
                "-c",
                "import subprocess, sys; "
                "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], "
                "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(p.pid)",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        print(f"orphan {middle.stdout.strip()}", flush=True)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200 if healthy and self.path == "/health" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    print(f"serving on {port} as {os.getpid()}", flush=True)
    http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
