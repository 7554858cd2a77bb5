"""Scale-out recipe test: two `easel serve` workers on loopback ports behind nginx (the
upstream block of deploy/nginx/easel.conf) on a third port. Twelve txt2img requests
through nginx must all succeed, both workers must serve some, and every image must equal
what a single worker gives for the same seed.

Usage: python nginx_test.py EASEL_BINARY MODELS_DIR
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webuiapi_client import start_server  # noqa: E402

EASEL, MODELS = sys.argv[1], sys.argv[2]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx_conf(tmp, port, workers):
    """deploy/nginx/easel.conf with these workers and port, inside a minimal main config."""
    site = open(os.path.join(ROOT, "deploy/nginx/easel.conf")).read()
    servers = "".join(f"    server 127.0.0.1:{w} max_fails=3 fail_timeout=30s;\n" for w in workers)
    site = re.sub(r"(    server 127\.0\.0\.1:\d+ [^\n]*\n)+", servers, site)
    site = site.replace("listen 7860;", f"listen 127.0.0.1:{port};")
    # As root, nginx would switch its workers to `nobody`, who cannot write the private
    # temp folder; the test's workers keep the test's user.
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""
{user}
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 256; }}
http {{
    log_format upstreamlog '$request_uri $status $upstream_addr';
    access_log {tmp}/access.log upstreamlog;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{site}
}}
"""


def request(port, seed):
    body = {"prompt": "a lighthouse", "seed": seed, "steps": 2, "width": 64, "height": 64,
            "sampler_name": "Euler a"}
    r = requests.post(f"http://127.0.0.1:{port}/sdapi/v1/txt2img", json=body, timeout=300)
    return r.status_code, r.json()


def main():
    (a, port_a), (b, port_b) = start_server(), start_server()
    tmp = tempfile.mkdtemp(prefix="easel-nginx-")
    port = free_port()
    conf = os.path.join(tmp, "nginx.conf")
    open(conf, "w").write(nginx_conf(tmp, port, [port_a, port_b]))
    nginx = subprocess.Popen(["nginx", "-p", tmp, "-c", conf])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                if nginx.poll() is not None:
                    raise SystemExit(open(f"{tmp}/error.log").read())
                threading.Event().wait(0.1)
        seeds = list(range(100, 112))
        through = {}

        def one(seed):
            through[seed] = request(port, seed)

        threads = [threading.Thread(target=one, args=(s,)) for s in seeds]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        for s in seeds:
            status, body = through[s]
            assert status == 200, (s, status, body)
        for s in seeds:
            status, single = request(port_a, s)
            assert status == 200
            assert single["images"] == through[s][1]["images"], f"seed {s}: image differs from a single worker's"
            assert json.loads(single["info"])["infotexts"] == json.loads(through[s][1]["info"])["infotexts"]
        nginx.terminate()
        nginx.wait()
        log = open(f"{tmp}/access.log").read().splitlines()
        served = {w: sum(1 for line in log if line.startswith("/sdapi/v1/txt2img 200") and line.endswith(f":{w}"))
                  for w in (port_a, port_b)}
        print(f"nginx: 12/12 served, per worker {served}")
        assert sum(served.values()) == 12 and all(n > 0 for n in served.values()), served
    finally:
        if nginx.poll() is None:
            nginx.terminate()
            nginx.wait()
        for w in (a, b):
            w.terminate()
            w.wait()


if __name__ == "__main__":
    main()
