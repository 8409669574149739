"""Shared pieces of the benchmark: text preparation for the peers, metrics, and running a
command under /usr/bin/time -v to get its wall time and peak resident memory."""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unicodedata


def _punctuation_class():
    chars = [
        chr(c)
        for c in range(sys.maxunicode + 1)
        if unicodedata.category(chr(c)).startswith("P")
    ]
    return re.compile("([" + "".join(re.escape(c) for c in chars) + "])")


_PUNCT = None


def prepare_text(text):
    """Peer preprocessing, the way fastText's own scripts prepare text: lowercase, punctuation
    split off into tokens of its own, whitespace collapsed (so one document is one line).

    Punctuation is every character whose Unicode category starts with 'P' (this includes the
    Devanagari danda). Combining marks (Devanagari vowel signs, virama) are category M and stay
    inside their words: a \\w-based split would cut them out."""
    global _PUNCT
    if _PUNCT is None:
        _PUNCT = _punctuation_class()
    return " ".join(_PUNCT.sub(r" \1 ", text.lower()).split())


def one_line(text):
    """The raw text on one line (for tools that read one article per line)."""
    return " ".join(text.split())


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def metrics(truth, predicted):
    """Accuracy and macro-F1 over the labels seen in the truth or the predictions (the same
    definition as `khabar eval` and scikit-learn's f1_score(average='macro'))."""
    assert len(truth) == len(predicted), (len(truth), len(predicted))
    labels = sorted(set(truth) | set(predicted))
    tp = dict.fromkeys(labels, 0)
    fp = dict.fromkeys(labels, 0)
    fn = dict.fromkeys(labels, 0)
    correct = 0
    for t, p in zip(truth, predicted):
        if t == p:
            correct += 1
            tp[t] += 1
        else:
            fp[p] += 1
            fn[t] += 1
    f1s = []
    for label in labels:
        denom = 2 * tp[label] + fp[label] + fn[label]
        f1s.append(2 * tp[label] / denom if denom else 0.0)
    n = len(truth)
    return {
        "n": n,
        "accuracy": correct / n if n else 0.0,
        "macro_f1": sum(f1s) / len(f1s) if f1s else 0.0,
    }


class Measured:
    """What one command did: exit code, wall seconds, peak RSS (MiB), stderr text."""

    def __init__(self, rc, wall, rss_mib, stderr, timed_out):
        self.rc = rc
        self.wall = wall
        self.rss_mib = rss_mib
        self.stderr = stderr
        self.timed_out = timed_out

    @property
    def ok(self):
        return self.rc == 0 and not self.timed_out

    def why(self):
        if self.timed_out:
            return "timed out after %.0f s" % self.wall
        tail = [l for l in self.stderr.strip().splitlines() if l.strip()][-1:]
        return "exit %d: %s" % (self.rc, tail[0][:200] if tail else "(no message)")


_RSS = re.compile(r"Maximum resident set size \(kbytes\):\s*(\d+)")


def measure(cmd, stdout=None, timeout=None, env=None):
    """Runs cmd under /usr/bin/time -v. Wall time is taken around the whole command; peak RSS is
    what time -v reports. stdout: a path to write the command's output to (None: discard).
    On timeout the whole process group is killed."""
    with tempfile.NamedTemporaryFile(prefix="khabar-bench-time-", suffix=".txt") as tf:
        out = open(stdout, "wb") if stdout else subprocess.DEVNULL
        try:
            start = time.perf_counter()
            proc = subprocess.Popen(
                ["/usr/bin/time", "-v", "-o", tf.name] + [str(c) for c in cmd],
                stdout=out,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
            timed_out = False
            try:
                _, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                _, err = proc.communicate()
            wall = time.perf_counter() - start
        finally:
            if stdout:
                out.close()
        with open(tf.name, encoding="utf-8", errors="replace") as f:
            report = f.read()
    m = _RSS.search(report)
    rss = int(m.group(1)) / 1024.0 if m else None
    return Measured(proc.returncode, wall, rss, err.decode("utf-8", "replace"), timed_out)


def disk_size(path):
    """Bytes on disk of a file, or of every file under a directory."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total
