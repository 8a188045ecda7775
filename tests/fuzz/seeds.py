#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, cut from the recorded transcripts.

usage: seeds.py FIXTURES_QMP_DIR OUT_DIR

Reads tests/unit/fixtures/qmp/*.txt (written by record.sh there: "S <json>"
is a line QEMU or the agent sent, "S! <hex>" raw bytes such as QGA's 0xFF,
"C ..." what the client sent, "@eol crlf|lf" the line ending) and writes:

  OUT/qmp_stream/  each QMP transcript's server side as one stream, and
                   every message (server and client, QMP and QGA) alone
  OUT/qga_stream/  each QGA transcript's server side as one stream (0xFF
                   included), and every message alone
  OUT/qmp_message/ every message alone
  OUT/base64/      the base64 payloads of guest-exec (input, output)

query-qmp-schema's reply (200 KiB) is kept as its first entries only: a
seed that size makes every mutation slow.
"""

import hashlib
import json
import os
import sys

SCHEMA_ENTRIES = 12


def load(path):
    eol = "\r\n"
    steps = []
    with open(path, "rb") as f:
        for raw in f.read().split(b"\n"):
            line = raw.decode("utf-8")
            if not line or line.startswith("#"):
                continue
            if line == "@eol crlf":
                eol = "\r\n"
                continue
            if line == "@eol lf":
                eol = "\n"
                continue
            if line == "@close":
                continue
            tag, _, rest = line.partition(" ")
            if tag in ("S", "C"):
                steps.append((tag, rest))
            elif tag in ("S!", "C!"):
                steps.append((tag, bytes.fromhex(rest)))
            else:
                sys.exit(f"{path}: unknown directive {line[:40]!r}")
    return eol, steps


def shrink(text):
    """A reply whose result is a long array keeps its first entries."""
    msg = json.loads(text)
    ret = msg.get("return")
    if isinstance(ret, list) and len(ret) > SCHEMA_ENTRIES:
        msg["return"] = ret[:SCHEMA_ENTRIES]
        return json.dumps(msg, separators=(", ", ": "))
    return text


def base64_payloads(text, out):
    def walk(v):
        if isinstance(v, dict):
            for k, x in v.items():
                if k in ("input-data", "out-data", "err-data") and isinstance(x, str):
                    out.add(x.encode())
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(json.loads(text))


def write(dir_, data):
    os.makedirs(dir_, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(dir_, name), "wb") as f:
        f.write(data)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    messages, b64 = set(), set()
    streams = {"qmp_stream": [], "qga_stream": []}
    for name in sorted(os.listdir(src)):
        if not name.endswith(".txt"):
            continue
        eol, steps = load(os.path.join(src, name))
        target = "qga_stream" if name.startswith("qga") else "qmp_stream"
        stream = b""
        for tag, payload in steps:
            if tag in ("S", "C"):
                text = shrink(payload)
                base64_payloads(text, b64)
                messages.add((text + eol).encode())
                if tag == "S":
                    stream += (text + eol).encode()
            elif tag == "S!":
                stream += payload
        streams[target].append(stream)
    for target, seeds in streams.items():
        for s in seeds:
            write(os.path.join(out, target), s)
        for m in messages:
            write(os.path.join(out, target), m)
    for m in messages:
        write(os.path.join(out, "qmp_message"), m)
    for p in b64:
        write(os.path.join(out, "base64"), p)


if __name__ == "__main__":
    main()
