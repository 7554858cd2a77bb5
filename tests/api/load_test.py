"""A bounded load test: 64 concurrent txt2img requests on the tiny model against one
`easel serve` on loopback (queue limit 32), 30 s at most. Every request must get an
answer: its images (200) or an immediate "queue full" (503); none may be lost, and the
server must still answer afterwards. Then one 512² image, and the memory its buffers took
must go back to the system once the server is idle. Prints the figures as JSON.

Usage: python load_test.py EASEL_BINARY MODELS_DIR
"""
import json
import sys
import threading
import time

import requests

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from webuiapi_client import start_server  # noqa: E402

EASEL, MODELS = sys.argv[1], sys.argv[2]
CLIENTS, BUDGET_S = 64, 30.0


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    server, port = start_server("--queue-limit", "32")
    base = f"http://127.0.0.1:{port}/sdapi/v1"
    try:
        # One request first, so the model is loaded before the RSS baseline.
        requests.post(f"{base}/txt2img", json={"steps": 1, "width": 64, "height": 64}, timeout=60)
        rss_before = rss_bytes(server.pid)
        results, lock = [], threading.Lock()

        def client(i):
            body = {"prompt": f"load {i}", "seed": i, "steps": 2, "width": 64, "height": 64,
                    "sampler_name": "Euler"}
            t0 = time.time()
            try:
                r = requests.post(f"{base}/txt2img", json=body, timeout=BUDGET_S)
                wait = json.loads(r.json()["info"])["queue_wait_seconds"] if r.status_code == 200 else None
                out = (r.status_code, time.time() - t0, wait)
            except requests.RequestException as e:
                out = (f"lost: {e}", time.time() - t0, None)
            with lock:
                results.append(out)

        t0 = time.time()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(BUDGET_S)
        elapsed = time.time() - t0
        rss_after = rss_bytes(server.pid)
        served = sum(1 for r in results if r[0] == 200)
        busy = sum(1 for r in results if r[0] == 503)
        other = [r for r in results if r[0] not in (200, 503)]
        waits = [r[2] for r in results if r[2] is not None]
        alive = requests.get(f"{base}/progress", timeout=10).status_code == 200
        report = {
            "clients": CLIENTS, "answered": len(results), "served": served, "refused_503": busy,
            "lost_or_other": len(other), "seconds": round(elapsed, 2),
            "max_queue_wait_s": round(max(waits), 3) if waits else None,
            "max_latency_s": round(max(r[1] for r in results), 3) if results else None,
            "rss_before_mb": round(rss_before / 2**20, 1), "rss_after_mb": round(rss_after / 2**20, 1),
            "server_answers_after": alive,
        }
        # A larger image's buffers are kept for reuse while jobs come, and handed back to
        # the system once the server has been idle for 2 s.
        r = requests.post(f"{base}/txt2img", json={"steps": 1, "width": 512, "height": 512},
                          timeout=120)
        assert r.status_code == 200, r.text
        rss_busy = rss_bytes(server.pid)
        time.sleep(3.5)
        rss_idle = rss_bytes(server.pid)
        report["rss_after_512_mb"] = round(rss_busy / 2**20, 1)
        report["rss_idle_mb"] = round(rss_idle / 2**20, 1)
        print("load test:", json.dumps(report))
        assert rss_busy - rss_idle > 64 * 2**20, f"the server kept its memory when idle: {report}"
        assert len(results) == CLIENTS, "some clients never got an answer"
        assert not other, other
        assert served + busy == CLIENTS and served >= 33, report
        assert elapsed < BUDGET_S and alive, report
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
