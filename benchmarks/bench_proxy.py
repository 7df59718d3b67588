"""Slow sockets against gunicorn alone and behind nginx: are other visitors still served?

Run (the demo region built in ``geodata/``, e.g. by ``scripts/run.sh`` once)::

    .venv/bin/python benchmarks/bench_proxy.py [--geodata geodata] [--region demo]

Starts gunicorn with ``gunicorn.conf.py`` (2 gthread workers x 4 threads) twice: once on a
free 127.0.0.1 port, once on a unix socket behind nginx (``deploy/nginx_conf.py --local``,
a free 127.0.0.1 port). For each count of slow sockets (``--sockets``, default 4 8 16 64),
it opens that many connections from 127.0.0.3 that send a request's headers one byte a
second, holds them ``--hold`` seconds, and meanwhile a visitor from 127.0.0.2 asks for the
health check and the page in turn, every 0.25 s, each with a 2 s timeout. Prints, per
setup and count: requests, failures (timeouts and errors; a failure counts as 2 s), p50 and
p95 of each path, how many slow sockets the server still held half-way and at the end
(nginx drops them after its 10 s ``client_header_timeout``), the CPU seconds of gunicorn
and nginx, and the load average before and after. Only 127.0.0.1 is contacted; every loop
is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VISITOR, SLOW = "127.0.0.2", "127.0.0.3"
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slow\r\nX-Padding: " + b"a" * 400


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s(pid: int) -> float:
    """CPU seconds of a process and its children (workers), from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def wait_health(port: int, procs: list[subprocess.Popen], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise SystemExit("bench_proxy: a server stopped at start-up")
        with contextlib.suppress(OSError):
            if get(port, "/healthz", 2)[0] == 200:
                return
        time.sleep(0.3)
    raise SystemExit("bench_proxy: the app did not answer within 60 s")


def get(port: int, path: str, timeout: float) -> tuple[int, float]:
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=timeout, source_address=(VISITOR, 0)
    )
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        return r.status, time.perf_counter() - t0
    finally:
        conn.close()


def still_open(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def attack(port: int, count: int, hold: float) -> dict[str, object]:
    """Hold ``count`` slow sockets for ``hold`` seconds while a visitor keeps asking."""
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.settimeout(2)
        s.bind((SLOW, 0))
        s.connect(("127.0.0.1", port))
        sockets.append(s)
    stop = threading.Event()

    def trickle() -> None:
        i = 0
        while not stop.is_set() and i < len(REQUEST):
            for s in sockets:
                with contextlib.suppress(OSError):
                    s.send(REQUEST[i : i + 1])
            i += 1
            stop.wait(1.0)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    time.sleep(1.0)
    times: dict[str, list[float]] = {"/healthz": [], "/": []}
    failures = 0
    end = time.monotonic() + hold
    held_mid: int | None = None
    while time.monotonic() < end:
        if held_mid is None and time.monotonic() > end - hold / 2:
            held_mid = sum(still_open(s) for s in sockets)
        for path, seconds in times.items():
            try:
                status, dt = get(port, path, 2.0)
                if status != 200:
                    failures += 1
                seconds.append(dt if status == 200 else 2.0)
            except OSError:
                failures += 1
                seconds.append(2.0)
            time.sleep(0.25)
    held = sum(still_open(s) for s in sockets)
    stop.set()
    thread.join(timeout=5)
    for s in sockets:
        s.close()
    return {"times": times, "failures": failures, "held_mid": held_mid, "held": held}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def start_gunicorn(geodata: Path, region: str, bind: str, logs: Path) -> subprocess.Popen:
    env = dict(os.environ, ACCESS_ATLAS_GEODATA=str(geodata), ACCESS_ATLAS_REGION=region)
    env["ACCESS_ATLAS_BIND"] = bind
    gunicorn = Path(sys.executable).with_name("gunicorn")
    return subprocess.Popen(
        [str(gunicorn), "app:server", "-c", str(ROOT / "gunicorn.conf.py")],
        cwd=ROOT,
        env=env,
        stdout=(logs / "gunicorn.out").open("ab"),
        stderr=(logs / "gunicorn.err").open("ab"),
    )


def stop(proc: subprocess.Popen, sig: int) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_setup(name: str, port: int, procs: list[subprocess.Popen], args) -> None:
    wait_health(port, procs)
    for _ in range(5):  # warm: the first page builds the layers
        get(port, "/", 30)
    for count in args.sockets:
        load0 = os.getloadavg()[0]
        cpu0 = [cpu_s(p.pid) for p in procs]
        res = attack(port, count, args.hold)
        cpu = [cpu_s(p.pid) - c for p, c in zip(procs, cpu0, strict=True)]
        t = res["times"]
        n = sum(len(v) for v in t.values())  # type: ignore[union-attr]
        print(
            f"{name:14s} {count:4d} slow  held {res['held_mid']:3d} mid, {res['held']:3d} end  "
            f"requests {n:3d}  "
            f"failed {res['failures']:3d}  "
            + "  ".join(
                f"{p} p50 {pct(v, 0.5) * 1000:6.0f} ms p95 {pct(v, 0.95) * 1000:6.0f} ms"
                for p, v in t.items()  # type: ignore[union-attr]
            )
            + f"  cpu {' + '.join(f'{c:.2f}' for c in cpu)} s"
            + f"  load {load0:.2f} -> {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        time.sleep(args.rest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--geodata", type=Path, default=ROOT / "geodata")
    parser.add_argument("--region", default="demo")
    parser.add_argument("--sockets", type=int, nargs="+", default=[4, 8, 16, 64])
    parser.add_argument("--hold", type=float, default=12.0, help="seconds the sockets are held")
    parser.add_argument("--rest", type=float, default=3.0, help="seconds between rounds")
    parser.add_argument("--only", choices=["gunicorn", "nginx"], help="one setup only")
    args = parser.parse_args(argv)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        run = Path(tmp)
        if args.only != "nginx":
            port = free_port()
            app = start_gunicorn(args.geodata, args.region, f"127.0.0.1:{port}", run)
            try:
                run_setup("gunicorn alone", port, [app], args)
            finally:
                stop(app, signal.SIGQUIT)
        if args.only != "gunicorn":
            (run / "temp").mkdir()
            sock, port = run / "gunicorn.sock", free_port()
            user = ["--user", "root"] if os.geteuid() == 0 else []
            conf = subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "deploy" / "nginx_conf.py"),
                    "--local",
                    str(run),
                    "--socket",
                    str(sock),
                    "--listen",
                    f"127.0.0.1:{port}",
                    *user,
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            (run / "nginx.conf").write_text(conf)
            app = start_gunicorn(args.geodata, args.region, f"unix:{sock}", run)
            proxy = subprocess.Popen(
                [nginx, "-p", str(run), "-c", str(run / "nginx.conf"), "-e", str(run / "error.log")]
            )
            try:
                run_setup("behind nginx", port, [app, proxy], args)
            finally:
                stop(proxy, signal.SIGTERM)
                stop(app, signal.SIGQUIT)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
