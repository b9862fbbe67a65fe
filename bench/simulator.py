"""Zoho simulator benchmark: how fast it lists, so pull benchmarks measure TDS Core and not the fake Zoho.

Seeds N Inventory items, then pages through `GET /inventory/v1/items` (200 rows a page, a token,
`organization_id`) over real HTTP with httpx, decoding every page as a client does, and reports
rows/s. Baseline, in the same run: a bare stdlib HTTP server answering the same number of requests
with one pre-built 200-row page (no auth, no lookup, no limits) — the ceiling of HTTP + JSON decoding
on this machine, which the simulator can approach but not pass.

Target: listing >= 3,000 rows/s, the pull benchmark's own target, so the simulator is
never what limits it; Zoho's real ceiling is 100 calls x 200 rows a minute, about 333 rows/s.

    .venv/bin/python bench/simulator.py              # 50,000 items
    .venv/bin/python bench/simulator.py --smoke      # 1,000 items, seconds

Exit status: 0 when every item was listed exactly once; 1 otherwise (the speed target is reported,
not enforced: the machine is shared and its figures vary).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zohosim import ZohoSimulator

PER_PAGE = 200
TARGET_ROWS_PER_SECOND = 3000


def list_everything(sim: ZohoSimulator) -> tuple[list[str], float, bytes]:
    """Every item id listed, the seconds it took, and the first page's raw answer (for the baseline)."""
    with httpx.Client(base_url=sim.url, timeout=30) as http:
        token = http.post(
            "/oauth/v2/token",
            data={
                "client_id": "sim-client",
                "client_secret": "sim-secret",
                "refresh_token": "sim-refresh",
                "grant_type": "refresh_token",
            },
        ).json()["access_token"]
        headers = {"Authorization": f"Zoho-oauthtoken {token}"}
        ids, page, first, started = [], 1, b"", time.perf_counter()
        while True:
            params = {"organization_id": sim.organization_id, "page": page, "per_page": PER_PAGE}
            response = http.get("/inventory/v1/items", params=params, headers=headers)
            answer = response.json()
            first = first or response.content
            ids += [row["item_id"] for row in answer["items"]]
            if not answer["page_context"]["has_more_page"]:
                return ids, time.perf_counter() - started, first
            page += 1


def bare_baseline(page_body: bytes, pages: int) -> float:
    class Bare(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as the simulator does

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(page_body)))
            self.end_headers()
            self.wfile.write(page_body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Bare)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.server_address[1]}", timeout=30) as http:
            started = time.perf_counter()
            for page in range(1, pages + 1):
                http.get("/inventory/v1/items", params={"page": page}).json()
            return time.perf_counter() - started
    finally:
        server.shutdown()
        server.server_close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--smoke", action="store_true", help="1,000 items: checks the benchmark still runs")
    args = parser.parse_args()
    count = 1_000 if args.smoke else args.items

    with ZohoSimulator() as sim:
        started = time.perf_counter()
        seeded = sim.seed("products", count)
        seed_seconds = time.perf_counter() - started
        print(f"seeded {count} items in {seed_seconds:.1f} s ({count / seed_seconds:,.0f} objects/s)")
        ids, list_seconds, body = list_everything(sim)
    pages = -(-count // PER_PAGE)
    bare_seconds = bare_baseline(body, pages)

    rows_per_second = len(ids) / list_seconds
    bare_rows_per_second = pages * PER_PAGE / bare_seconds
    complete = sorted(ids) == sorted(obj["item_id"] for obj in seeded)
    print(f"simulator: listed {len(ids)} items in {pages} pages, {list_seconds:.2f} s = {rows_per_second:,.0f} rows/s")
    print(f"baseline (bare server, same pages): {bare_seconds:.2f} s = {bare_rows_per_second:,.0f} rows/s")
    print(f"ratio simulator/bare: {rows_per_second / bare_rows_per_second:.2f}")
    verdict = "met" if rows_per_second >= TARGET_ROWS_PER_SECOND else "NOT met"
    print(f"target >= {TARGET_ROWS_PER_SECOND:,} rows/s: {verdict}; every item listed once: {complete}")
    print(json.dumps({"rows_per_second": round(rows_per_second), "bare_rows_per_second": round(bare_rows_per_second)}))
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
