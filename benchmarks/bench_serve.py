"""``dicomrender serve`` against Orthanc (with its DICOMweb plugin): rendered pixels and requests/s.

Both servers serve the same 512x512 12-bit CT slices (generated as ``bench_series.py`` does) on loopback
ports, one after the other: Orthanc from a temporary configuration (DicomWeb plugin enabled, no
authentication, no DICOM port, storage in a temporary folder, the files uploaded through its REST API),
dicomrender from the folder itself.  Then:

* **pixels**: ``.../rendered?window=40,80,linear`` as PNG from each server against ``dicomrender.render``
  with the same window (identical pixels, largest difference);
* **load**: 512x512 JPEG renders (``window=40,80,linear``, quality 90, the slices in turn) from ``CONCURRENCY``
  concurrent connections for ``DURATION`` seconds, loopback only, stopping by itself: ``wrk`` (a C load
  generator, Debian's ``wrk``: it leaves the cores to the servers) when installed, else an httpx async
  client (Python: it takes a core's share itself); median, p90 and p99 latency and requests/s.

Not run in CI (needs ``apt-get install orthanc orthanc-dicomweb``)::

    python benchmarks/bench_serve.py            # prints a Markdown table (the README's)
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pydicom
from PIL import Image

import dicomrender
from bench_series import CENTER, WIDTH, make_folder
from dicomrender.engine import usable_cpus

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
CONCURRENCY = 8
DURATION = 10.0
QUALITY = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=20)


def start_orthanc(work: Path) -> tuple:
    port = free_port()
    storage = work / "orthanc-storage"
    storage.mkdir()
    config = {
        "Name": "bench", "StorageDirectory": str(storage), "IndexDirectory": str(storage),
        "HttpPort": port, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "DicomServerEnabled": False, "Plugins": [DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    path = work / "orthanc.json"
    path.write_text(json.dumps(config))
    log = open(work / "orthanc.log", "wb")
    process = subprocess.Popen([ORTHANC, str(path)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url + "/system", process)
    return process, url + "/dicom-web"


def start_dicomrender(folder: Path, work: Path, *options: str) -> tuple:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "dicomrender.cli", "serve", str(folder), "--port", str(port),
                                "--cache-dir", str(work / "cache"), "--quiet", *options],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url + "/dicomweb/studies", process)
    return process, url + "/dicomweb"


def instance_urls(base: str) -> list:
    """``.../instances/{uid}`` of every instance, through the server's own QIDO-RS."""
    urls = []
    for study in httpx.get(base + "/studies", timeout=60).json():
        s = study["0020000D"]["Value"][0]
        for series in httpx.get(f"{base}/studies/{s}/series", timeout=60).json():
            se = series["0020000E"]["Value"][0]
            for inst in httpx.get(f"{base}/studies/{s}/series/{se}/instances", timeout=60).json():
                urls.append((inst["00080018"]["Value"][0], f"{base}/studies/{s}/series/{se}/instances/"
                                                           f"{inst['00080018']['Value'][0]}"))
    return sorted(urls)


def compare_pixels(urls: list, paths: dict, sample: int = 8) -> dict:
    """Identical pixels and the largest difference of PNG renders (window=40,80,linear) against render()."""
    same = total = worst = 0
    for uid, url in urls[:sample]:
        # the query written out: Orthanc does not decode %2C in it
        r = httpx.get(f"{url}/rendered?window={CENTER:g},{WIDTH:g},linear", headers={"Accept": "image/png"}, timeout=60)
        r.raise_for_status()
        got = np.asarray(Image.open(io.BytesIO(r.content)).convert("L")).astype(int)
        expected = dicomrender.render(paths[uid], window=(CENTER, WIDTH)).astype(int)
        if got.shape != expected.shape:
            return {"same": f"shape {got.shape} vs {expected.shape}", "max": "-"}
        same += int((got == expected).sum())
        total += got.size
        worst = max(worst, int(np.abs(got - expected).max()))
    return {"same": f"{100.0 * same / total:.3f} %", "max": str(worst)}


async def load(urls: list, duration: float, concurrency: int) -> dict:
    """``concurrency`` clients requesting JPEG renders of the slices in turn for ``duration`` seconds."""
    latencies: list = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # Orthanc needs the function (3 values) and does not decode %2C: the query is written out
    query = f"/rendered?window={CENTER:g},{WIDTH:g},linear&quality={QUALITY}"
    async with httpx.AsyncClient(limits=limits, timeout=60, headers={"Accept": "image/jpeg"}) as client:
        end = time.monotonic() + duration

        async def worker(k: int) -> None:
            nonlocal errors
            i = k
            while time.monotonic() < end:
                url = urls[i % len(urls)][1] + query
                i += concurrency
                start = time.perf_counter()
                r = await client.get(url)
                if r.status_code != 200 or not r.content.startswith(b"\xff\xd8"):
                    errors += 1
                latencies.append(time.perf_counter() - start)

        started = time.monotonic()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.monotonic() - started
    ms = np.array(latencies) * 1000
    return {"requests": len(latencies), "errors": errors, "rps": len(latencies) / elapsed,
            "p50": float(np.percentile(ms, 50)), "p90": float(np.percentile(ms, 90)),
            "p99": float(np.percentile(ms, 99))}


#: wrk script: the slices' paths in turn, one list per connection offset.
_WRK_SCRIPT = """
paths = {%s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1], {["Accept"] = "image/jpeg"})
end
"""


def load_wrk(urls: list, duration: float, concurrency: int, work: Path) -> dict:
    """The same load as :func:`load`, generated by wrk; its latency distribution and request count."""
    query = f"/rendered?window={CENTER:g},{WIDTH:g},linear&quality={QUALITY}"
    root = urls[0][1].split("/", 3)
    paths = ", ".join(f'"/{url.split("/", 3)[3]}{query}"' for _, url in urls)
    script = work / "paths.lua"
    script.write_text(_WRK_SCRIPT % paths)
    out = subprocess.run(["wrk", f"-t{min(2, concurrency)}", f"-c{concurrency}", f"-d{duration:g}s", "--latency",
                          "-s", str(script), f"{root[0]}//{root[2]}"], capture_output=True, text=True,
                         timeout=duration + 60, check=True).stdout

    def milliseconds(label: str) -> float:
        value = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert value, out
        return float(value.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[value.group(2)]

    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    failures = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"requests": requests, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "errors": (int(errors.group(1)) if errors else 0) + (sum(map(int, failures.groups())) if failures else 0),
            "p50": milliseconds("50%"), "p90": milliseconds("90%"), "p99": milliseconds("99%")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=32)
    parser.add_argument("--duration", type=float, default=DURATION)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    args = parser.parse_args(argv)
    if not (os.path.exists(ORTHANC) and os.path.exists(DICOMWEB_PLUGIN)):
        print("needs Orthanc and its DICOMweb plugin: apt-get install orthanc orthanc-dicomweb", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        folder = work / "ct"
        make_folder(folder, slices=args.slices, other=0)
        paths = {}
        for path in sorted(folder.iterdir()):
            paths[str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)] = str(path)
        rows = []
        for name in ("dicomrender serve", "dicomrender serve --cache-mb 0", "Orthanc + DICOMweb"):
            if name.startswith("Orthanc"):
                process, base = start_orthanc(work)
            else:
                process, base = start_dicomrender(folder, work, *name.split()[2:])
            try:
                if name.startswith("Orthanc"):
                    root = base.rsplit("/dicom-web", 1)[0]
                    for path in paths.values():
                        httpx.post(root + "/instances", content=Path(path).read_bytes(), timeout=60).raise_for_status()
                urls = instance_urls(base)
                assert len(urls) == len(paths), (name, len(urls))
                pixels = compare_pixels(urls, paths)
                if shutil.which("wrk"):
                    load_wrk(urls, 1.0, args.concurrency, work)  # warm-up
                    result = load_wrk(urls, args.duration, args.concurrency, work)
                else:
                    asyncio.run(load(urls, 1.0, args.concurrency))  # warm-up
                    result = asyncio.run(load(urls, args.duration, args.concurrency))
            finally:
                stop(process)
            rows.append((name, pixels, result))
    client = "wrk" if shutil.which("wrk") else "an httpx async client"
    print(f"Rendered 512x512 CT slices as JPEG (window=40,80,linear, quality {QUALITY}), {args.concurrency} concurrent "
          f"connections for {args.duration:g} s on loopback ({client}, on the same machine); {usable_cpus()} usable "
          f"cores ({platform.processor() or platform.machine()}); dicomrender serve with its defaults "
          f"({usable_cpus()} processes), Orthanc with its own.\n")
    print("| server | requests/s | median ms | p90 ms | p99 ms | errors | PNG window=40,80,linear vs render(): "
          "identical pixels | max diff |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, pixels, r in rows:
        print(f"| {name} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p90']:.1f} | {r['p99']:.1f} | {r['errors']} | "
              f"{pixels['same']} | {pixels['max']} |")
    print(f"\ndicomrender serve / Orthanc requests/s: {rows[0][2]['rps'] / rows[2][2]['rps']:.2f}x (with "
          f"--cache-mb 0, every request reading and parsing its file: {rows[1][2]['rps'] / rows[2][2]['rps']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
