"""The app under load: many people sending phone photos at once, on loopback only, bounded in count and time.

--clients clients (default 96) each send --per-client phone-like pictures (default 4; JPEGs of 1893x2201
pixels, each a different rendered test item) at the same moment, to the running app (python app.py, started
here on 127.0.0.1). It reports the answers per second (answers over the wall time until the last request ended),
how many requests were refused and with what message, any other failure, and whether the app still answers
afterwards. Every request has a deadline (--timeout-s); the run stops by itself.

Two kinds of client, each doing what a user's program does: upload the picture, ask for the answer, wait for it,
fetch the answer's picture.
- http (the default): Gradio's HTTP API (POST /gradio_api/upload, POST /gradio_api/call/classify, its event
  stream, GET of the file), from one asyncio process whose 96 clients share one TLS context. It costs this
  machine little, so the figure is the app's.
- gradio_client: one gradio_client.Client per client, in threads. Each pending request has a thread that polls
  every 50 ms, each Client a heartbeat stream, and each upload and download a new connection; on two cores that
  takes as much CPU as the app itself or more, so the figure is mostly the load generator's. Kept to compare with
  earlier runs (load-gradio-client-cpu.json).
Each row records the CPU seconds the clients and the app used while the load ran.

    python -m benchmarks.load [--client http|gradio_client] [--clients 96] [--per-client 4] [--app-dir DIR]
"""

import argparse
import os
import resource
import tempfile
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from benchmarks._common import record
from fmnist.data import load_raw
from fmnist.evaluation.reports import format_table
from fmnist.photo.render import render_photo
from fmnist.serving.server import running_app

SIZE = (1893, 2201)  # a phone picture, as the issue that asked for this benchmark measured


def phone_pictures(folder: Path, n: int) -> list[Path]:
    raw = load_raw(allow_download=False)
    out = []
    for i in range(n):
        image, _ = render_photo(raw.test_images[i], "everyday", np.random.default_rng([7, i]))
        path = folder / f"phone-{i}.jpg"
        image.convert("RGB").resize(SIZE).save(path, quality=88)
        out.append(path)
    return out


async def _http_request(client, url: str, picture: Path, timeout_s: float) -> tuple[str, float]:
    """One picture through Gradio's HTTP API: (outcome, seconds), outcome "ok" or the error's first line."""
    import asyncio
    import json

    t0 = time.perf_counter()
    api = url.rstrip("/") + "/gradio_api"

    async def ask():
        upload = await client.post(f"{api}/upload", files={"files": (picture.name, picture.read_bytes(), "image/jpeg")})
        upload.raise_for_status()
        data = [{"path": upload.json()[0], "meta": {"_type": "gradio.FileData"}}, "resnet"]
        call = await client.post(f"{api}/call/classify", json={"data": data})
        if call.status_code != 200:
            return f"HTTP {call.status_code}: {call.text.strip()[:120]}"
        event, payload = None, None
        async with client.stream("GET", f"{api}/call/classify/{call.json()['event_id']}") as events:
            async for line in events.aiter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    payload = json.loads(line.split(":", 1)[1])
                    break
        if event != "complete":
            message = payload.get("error") if isinstance(payload, dict) else payload
            return f"{event or 'no answer'}: {str(message).splitlines()[0] if message else ''}"
        for output in payload:  # the answer's picture, fetched as a browser or gradio_client would
            if isinstance(output, dict) and output.get("url"):
                (await client.get(output["url"])).raise_for_status()
        return "ok"

    try:
        outcome = await asyncio.wait_for(ask(), timeout_s)
    except Exception as e:  # refusals and failures alike are counted by their message
        outcome = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return outcome[:160], time.perf_counter() - t0


def through_http(url: str, groups: list[list[Path]], timeout_s: float) -> list[tuple[str, float]]:
    import asyncio
    import ssl

    import httpx

    async def run():
        context = ssl.create_default_context()  # one, shared: each new one costs ~20 ms of CPU
        clients = [httpx.AsyncClient(verify=context, timeout=timeout_s) for _ in groups]
        try:
            return await asyncio.gather(
                *[_http_request(c, url, p, timeout_s) for c, group in zip(clients, groups) for p in group]
            )
        finally:
            await asyncio.gather(*[c.aclose() for c in clients])

    return asyncio.run(run())


def through_gradio_client(url: str, groups: list[list[Path]], timeout_s: float) -> list[tuple[str, float]]:
    with ThreadPoolExecutor(len(groups)) as pool:
        return [r for rs in pool.map(lambda g: one_client(url, g, timeout_s), groups) for r in rs]


def one_client(url: str, pictures: list[Path], timeout_s: float) -> list[tuple[str, float]]:
    """(outcome, seconds) per picture: "ok", or the error's first line."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    jobs = [(client.submit(handle_file(str(p)), "resnet", api_name="/classify"), time.perf_counter()) for p in pictures]
    out = []
    for job, t0 in jobs:
        try:
            job.result(timeout=timeout_s)
            out.append(("ok", time.perf_counter() - t0))
        except Exception as e:  # refusals and failures alike are counted by their message
            out.append(
                (f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:160], time.perf_counter() - t0)
            )
    return out


def cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds (user and system) used so far by this process, or by process pid (Linux /proc)."""
    if pid is None:
        use = resource.getrusage(resource.RUSAGE_SELF)
        return use.ru_utime + use.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--client", choices=("http", "gradio_client"), default="http")
    p.add_argument("--clients", type=int, default=96)
    p.add_argument("--per-client", type=int, default=4)
    p.add_argument("--timeout-s", type=float, default=300.0, help="each request's deadline")
    p.add_argument("--app-dir", default=None, help="run this checkout's app.py instead of this one's")
    p.add_argument("--out", default="load")
    args = p.parse_args()
    app = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_app(Path(tmp) / "app.log", app_dir=args.app_dir, started=app) as url,
    ):
        pictures = phone_pictures(Path(tmp), args.clients * args.per_client)
        groups = [pictures[i :: args.clients] for i in range(args.clients)]
        send = through_http if args.client == "http" else through_gradio_client
        cpu0, app_cpu0, t0 = cpu_seconds(), cpu_seconds(app[0].pid), time.perf_counter()
        results = send(url, groups, args.timeout_s)
        wall = time.perf_counter() - t0
        # what the clients and the app each took of the machine while the load ran (both on these cores)
        generator_cpu, app_cpu = cpu_seconds() - cpu0, cpu_seconds(app[0].pid) - app_cpu0
        alive = urllib.request.urlopen(url, timeout=10).status == 200
    outcomes = Counter(o for o, _ in results)
    answered = [s for o, s in results if o == "ok"]
    row = {
        "requests": len(results),
        "answered": len(answered),
        "wall_s": wall,
        "answers_per_s": len(answered) / wall,
        "p50_answer_s": float(np.median(answered)) if answered else None,
        "refused": sum(n for o, n in outcomes.items() if o != "ok" and "queue is full" in o.lower()),
        "other_failures": sum(n for o, n in outcomes.items() if o != "ok" and "queue is full" not in o.lower()),
        "client": args.client,
        "generator_cpu_s": generator_cpu,
        "app_cpu_s": app_cpu,
        "alive_after": alive,
    }
    path = record(
        args.out,
        [row],
        torch.device("cpu"),
        {
            "client": args.client,
            "clients": args.clients,
            "per_client": args.per_client,
            "picture_size": list(SIZE),
            "outcomes": dict(outcomes),
            "app_dir": args.app_dir or ".",
        },
    )
    print(
        format_table(
            [row],
            [
                ("requests", "requests", "d"),
                ("answered", "answered", "d"),
                ("answers_per_s", "answers/s", ".2f"),
                ("p50_answer_s", "p50 answer s", ".1f"),
                ("refused", "refused (queue full)", "d"),
                ("other_failures", "other failures", "d"),
                ("wall_s", "wall s", ".0f"),
                ("generator_cpu_s", "clients' CPU s", ".0f"),
                ("app_cpu_s", "app's CPU s", ".0f"),
            ],
        )
    )
    print("outcomes:", dict(outcomes))
    print(f"({path})")


if __name__ == "__main__":
    main()
