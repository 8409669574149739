#!/usr/bin/env python3
"""Load test of `khabar serve`: documents/s and latency (p50, p90, p99) at 1, 8 and 64
concurrent clients, for a bow model and for the built-in hybrid model, then a soak run at 64
clients per model that samples the server's resident memory every 5 s. Writes
bench/results-serve.json and the section between `<!-- serve:begin -->` and
`<!-- serve:end -->` of bench/RESULTS.md.

    bench/serve_load.py                  # 20 s per cell, 300 s soak per model
    bench/serve_load.py --seconds 5 --soak 20   # a quick look

The load generator is examples/serve_load.rs (closed loop: each client sends its next request
when the answer to the last has come, on one keep-alive connection). Articles: the ag_news test
split from ../shared/data when present (the bow model is then trained on ag_news), else the
repository's data/news. Run it on an otherwise idle machine: client and server share its
cores.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
WORK = os.path.join(ROOT, "bench", "work", "serve")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
KHABAR = os.path.join(TARGET, "release", "khabar")
LOADGEN = os.path.join(TARGET, "release", "examples", "serve_load")
BEGIN, END = "<!-- serve:begin -->", "<!-- serve:end -->"


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


class Server:
    def __init__(self, args):
        self.proc = subprocess.Popen(
            [KHABAR, "serve", "--addr", "127.0.0.1:0"] + args,
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        first = self.proc.stderr.readline()
        if not first.startswith("listening on http://"):
            raise SystemExit("khabar serve did not start: " + first + self.proc.stderr.read())
        self.addr = first.split()[2][len("http://"):]
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()
        import urllib.request
        for _ in range(1200):
            try:
                with urllib.request.urlopen("http://%s/health" % self.addr) as r:
                    if r.status == 200:
                        return
            except Exception:
                pass
            time.sleep(0.05)
        raise SystemExit("khabar serve never became ready")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


def load(addr, texts, clients, seconds, batch=1):
    out = subprocess.run(
        [LOADGEN, "--addr", addr, "--input", texts, "--clients", str(clients),
         "--seconds", str(seconds), "--batch", str(batch), "--warmup", "2"],
        check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20, help="seconds per cell")
    ap.add_argument("--soak", type=float, default=300, help="seconds of the soak run per model")
    ap.add_argument("--markdown", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results-serve.json"))
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "khabar", "--example",
                    "serve_load"], cwd=ROOT, check=True)
    os.makedirs(WORK, exist_ok=True)
    ag = os.path.join(SHARED, "ag_news")
    if os.path.exists(os.path.join(ag, "test.jsonl")):
        corpus, texts, train = "ag_news", os.path.join(ag, "test.jsonl"), os.path.join(ag, "train.jsonl")
    else:
        corpus = "data/news"
        texts, train = (os.path.join(ROOT, "data", "news", n) for n in ("test.jsonl", "train.jsonl"))
    bow = os.path.join(WORK, "bow-" + corpus.replace("/", "-"))
    if not os.path.exists(os.path.join(bow, "config.json")):
        subprocess.run([KHABAR, "train", "--data", train, "--out", bow], check=True)

    models = [("bow (trained on %s)" % corpus, ["--model", bow]),
              ("hybrid (built-in, cascade)", [])]
    cells, soaks = [], []
    for name, model_args in models:
        server = Server(model_args)
        try:
            for clients in (1, 8, 64):
                r = load(server.addr, texts, clients, args.seconds)
                r.update(model=name, rss_mib=rss_mib(server.proc.pid))
                print(json.dumps(r), flush=True)
                cells.append(r)
            samples, done = [], threading.Event()

            def sample():
                t0 = time.time()
                while not done.wait(5):
                    samples.append((round(time.time() - t0), rss_mib(server.proc.pid)))
            sampler = threading.Thread(target=sample)
            sampler.start()
            r = load(server.addr, texts, 64, args.soak)
            done.set()
            sampler.join()
            rss = [m for _, m in samples]
            third = max(1, len(rss) // 3)
            r.update(model=name, rss_samples=samples,
                     rss_first_third_max=max(rss[:third]), rss_last_third_max=max(rss[-third:]),
                     rss_max=max(rss))
            print(json.dumps({k: v for k, v in r.items() if k != "rss_samples"}), flush=True)
            soaks.append(r)
        finally:
            server.stop()

    meta = {
        "date": datetime.date.today().isoformat(),
        "cores": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "loadavg_start": os.getloadavg()[0],
        "corpus": corpus,
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                 capture_output=True, text=True).stdout.strip(),
    }
    with open(args.json, "w") as f:
        json.dump({"meta": meta, "cells": cells, "soaks": soaks}, f, indent=1)

    md = [BEGIN, "", "## khabar serve under load", "",
          "`bench/serve_load.py` (commit %s, %s, %d cores; the load generator "
          "examples/serve_load.rs runs on the same machine): closed-loop clients, one keep-alive "
          "connection each, one %s test article per request, %g s per cell after 2 s of warm-up. "
          "Server defaults (`khabar serve`: workers one per core, queue 256)." % (
              meta["commit"], meta["date"], meta["cores"], corpus, args.seconds),
          "",
          "| model | clients | documents/s | p50 ms | p90 ms | p99 ms | errors | server RSS MiB |",
          "|---|---|---|---|---|---|---|---|"]
    for c in cells:
        md.append("| %s | %d | %.0f | %.2f | %.2f | %.2f | %d | %.0f |" % (
            c["model"], c["clients"], c["docs_per_s"], c["p50_ms"], c["p90_ms"], c["p99_ms"],
            c["errors"], c["rss_mib"]))
    md += ["", "Soak: 64 clients for %g s per model; the server's resident memory sampled every "
           "5 s." % args.soak, "",
           "| model | documents/s | p99 ms | errors | RSS max, first third | RSS max, last third |",
           "|---|---|---|---|---|---|"]
    for s in soaks:
        md.append("| %s | %.0f | %.2f | %d | %.0f MiB | %.0f MiB |" % (
            s["model"], s["docs_per_s"], s["p99_ms"], s["errors"], s["rss_first_third_max"],
            s["rss_last_third_max"]))
    md += ["", END]
    section = "\n".join(md)
    old = open(args.markdown, encoding="utf-8").read() if os.path.exists(args.markdown) else ""
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + section + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    with open(args.markdown, "w", encoding="utf-8") as f:
        f.write(new)
    print("wrote %s and %s" % (args.json, args.markdown))


if __name__ == "__main__":
    sys.exit(main())
