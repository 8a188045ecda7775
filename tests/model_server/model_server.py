#!/usr/bin/env python3
"""A scripted stand-in for the Anthropic Messages API, for tests.

It answers POST /v1/messages (streamed as server-sent events when the request
asks for `stream: true`, else one JSON body) by playing a script:

  - a request without tools (opencode's title request) gets a short text;
  - a request whose last message carries a tool_result gets the final text;
  - otherwise the newest user text is matched against the script's rules: the
    first rule whose `match` it contains answers with a `tool_use` of `write`
    ({"filePath", "content"}); no rule matching gets a plain text. (A turn cut
    short by a stop leaves its tool_result beside the next instruction in one
    message: a rule matching that instruction answers it.)

The script is a JSON file, read afresh on every request so a test can change
the mode between requests:

  {
    "mode": "normal" | "hang" | "error" | "slow",
    "error": {"status": 500, "type": "api_error", "message": "...",
              "retry_after_ms": 200},   # optional: a retry-after-ms header
    "slow_delay": 1.0,                  # seconds between events in "slow"
    "title": "Scripted title",
    "text": "Nothing to do.",           # when no rule matches
    "usage": {"input_tokens": 120, "output_tokens": 40},   # optional, fixed
    "rules": [{"match": "hello.txt", "path": "hello.txt",
               "content": "hello\n", "final": "Wrote hello.txt."}]
  }

A relative `path` is joined to the working directory named in the request's
system prompt ("Working directory: ..."), so the agent writes inside its repo.

Every request is recorded as one JSON line (headers including x-api-key, path,
model, message count, whether tools are present, the messages' text, what was
answered) in --log. The server binds 127.0.0.1 on a free port (or --port),
writes the port to --port-file once it listens, and exits on SIGTERM.
"""

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def message_text(content):
    """The text of one message's content: strings and text blocks, tool
    results' text, tool uses as `tool_use NAME INPUT`."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append(block.get("text", ""))
        elif kind == "tool_result":
            parts.append("tool_result " + message_text(block.get("content")))
        elif kind == "tool_use":
            parts.append("tool_use %s %s" % (block.get("name"), json.dumps(block.get("input"))))
    return "\n".join(parts)


def user_text(content):
    """A message's own text: strings and text blocks only."""
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content or []
                     if isinstance(b, dict) and b.get("type") == "text")


def has_tool_result(message):
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def system_text(system):
    if isinstance(system, str):
        return system
    return "\n".join(b.get("text", "") for b in system or [] if isinstance(b, dict))


def working_directory(body):
    m = re.search(r"Working directory:\s*(\S+)", system_text(body.get("system")))
    return m.group(1) if m else None


def decide(script, body):
    """What to answer: ("text", text) or ("write", path, content)."""
    messages = body.get("messages") or []
    if not body.get("tools"):
        return ("text", script.get("title", "Scripted session"))
    last = messages[-1] if messages else {}
    # The newest instruction: the last user message's own text, tool results
    # left out. A turn cut short by a stop leaves its tool_result in the same
    # message as the next instruction; the instruction wins then.
    asked = user_text(last.get("content")) if last.get("role") == "user" else ""
    rule = next((r for r in script.get("rules", []) if r.get("match", "") in asked), None) if asked else None
    if last.get("role") == "user" and has_tool_result(last) and rule is None:
        # The final text of the rule whose file was just written.
        final = script.get("final", "Done.")
        for m in reversed(messages):
            if m.get("role") == "assistant":
                written = message_text(m.get("content"))
                for rule in script.get("rules", []):
                    if rule.get("path") and rule["path"] in written:
                        final = rule.get("final", final)
                        break
                break
        return ("text", final)
    if rule is not None:
        path = rule["path"]
        if not os.path.isabs(path):
            cwd = working_directory(body)
            if cwd:
                path = os.path.join(cwd, path)
        return ("write", path, rule.get("content", ""))
    return ("text", script.get("text", "Nothing to do."))


def usage_for(script, body, answer_text):
    fixed = script.get("usage") or {}
    raw = json.dumps(body)
    return (int(fixed.get("input_tokens", max(1, len(raw) // 4))),
            int(fixed.get("output_tokens", max(1, len(answer_text) // 4))))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, script_path, log_path):
        super().__init__(addr, Handler)
        self.script_path = script_path
        self.log_path = log_path
        self.log_lock = threading.Lock()
        self.stopping = threading.Event()

    def script(self):
        with open(self.script_path, encoding="utf-8") as f:
            return json.load(f)

    def record(self, entry):
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.log_lock:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(line)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "model-server/1"

    def log_message(self, fmt, *args):  # quiet: the JSON log says it all
        pass

    def send_json(self, status, obj, headers=()):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.server.record({"time": time.time(), "method": "GET", "path": self.path,
                            "headers": dict(self.headers.items())})
        self.send_json(404, {"type": "error", "error": {"type": "not_found_error",
                                                        "message": "not found: " + self.path}})

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        try:
            script = self.server.script()
        except (OSError, ValueError) as e:
            script = {"mode": "error", "error": {"status": 500, "type": "api_error",
                                                 "message": "model server script: %s" % e}}
        mode = script.get("mode", "normal")
        messages = body.get("messages") or []
        entry = {
            "time": time.time(),
            "method": "POST",
            "path": self.path,
            "headers": dict(self.headers.items()),
            "model": body.get("model"),
            "stream": bool(body.get("stream")),
            "message_count": len(messages),
            "tools": bool(body.get("tools")),
            "tool_names": sorted(t.get("name", "") for t in body.get("tools") or []),
            "messages": [{"role": m.get("role"), "text": message_text(m.get("content"))}
                         for m in messages],
            "mode": mode,
        }
        if not self.path.split("?")[0].endswith("/messages"):
            entry["answer"] = "404"
            self.server.record(entry)
            self.send_json(404, {"type": "error", "error": {"type": "not_found_error",
                                                            "message": "not found: " + self.path}})
            return
        if mode == "hang":
            entry["answer"] = "hang"
            self.server.record(entry)
            self.server.stopping.wait()
            self.close_connection = True
            return
        if mode == "error":
            err = script.get("error") or {}
            status = int(err.get("status", 500))
            entry["answer"] = "error %d" % status
            self.server.record(entry)
            headers = []
            if "retry_after_ms" in err:
                headers.append(("retry-after-ms", str(int(err["retry_after_ms"]))))
            self.send_json(status, {"type": "error", "error": {
                "type": err.get("type", "api_error"),
                "message": err.get("message", "Scripted failure")}}, headers)
            return
        answer = decide(script, body)
        entry["answer"] = answer[0] if answer[0] == "text" else "write " + answer[1]
        entry["answer_text"] = answer[1] if answer[0] == "text" else answer[2]
        self.server.record(entry)
        delay = float(script.get("slow_delay", 1.0)) if mode == "slow" else 0.0
        if body.get("stream"):
            self.stream(script, body, answer, delay)
        else:
            self.whole(script, body, answer)

    def blocks(self, answer):
        if answer[0] == "text":
            return [{"type": "text", "text": answer[1]}]
        return [{"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:24], "name": "write",
                 "input": {"filePath": answer[1], "content": answer[2]}}]

    def whole(self, script, body, answer):
        blocks = self.blocks(answer)
        text = json.dumps(blocks)
        inp, out = usage_for(script, body, text)
        self.send_json(200, {
            "id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant",
            "model": body.get("model", "scripted"), "content": blocks,
            "stop_reason": "tool_use" if answer[0] == "write" else "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": inp, "output_tokens": out}})

    def stream(self, script, body, answer, delay):
        blocks = self.blocks(answer)
        inp, out = usage_for(script, body, json.dumps(blocks))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True

        def event(name, data):
            self.wfile.write(("event: %s\ndata: %s\n\n" % (name, json.dumps(data))).encode())
            self.wfile.flush()
            if delay:
                time.sleep(delay)

        try:
            event("message_start", {"type": "message_start", "message": {
                "id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant",
                "model": body.get("model", "scripted"), "content": [], "stop_reason": None,
                "stop_sequence": None, "usage": {"input_tokens": inp, "output_tokens": 1}}})
            for i, b in enumerate(blocks):
                if b["type"] == "text":
                    event("content_block_start", {"type": "content_block_start", "index": i,
                                                  "content_block": {"type": "text", "text": ""}})
                    text = b["text"]
                    for chunk in [text[j:j + 16] for j in range(0, len(text), 16)] or [""]:
                        event("content_block_delta", {"type": "content_block_delta", "index": i,
                                                      "delta": {"type": "text_delta", "text": chunk}})
                else:
                    event("content_block_start", {"type": "content_block_start", "index": i,
                                                  "content_block": {"type": "tool_use", "id": b["id"],
                                                                    "name": b["name"], "input": {}}})
                    args = json.dumps(b["input"])
                    for chunk in [args[j:j + 32] for j in range(0, len(args), 32)]:
                        event("content_block_delta", {"type": "content_block_delta", "index": i,
                                                      "delta": {"type": "input_json_delta",
                                                                "partial_json": chunk}})
                event("content_block_stop", {"type": "content_block_stop", "index": i})
            event("message_delta", {"type": "message_delta", "delta": {
                "stop_reason": "tool_use" if answer[0] == "write" else "end_turn",
                "stop_sequence": None}, "usage": {"output_tokens": out}})
            event("message_stop", {"type": "message_stop"})
        except (BrokenPipeError, ConnectionResetError):
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--script", required=True, help="the JSON script (read on every request)")
    ap.add_argument("--log", required=True, help="where each request is appended as a JSON line")
    ap.add_argument("--port-file", help="written with the port once the server listens")
    ap.add_argument("--port", type=int, default=0, help="default: a free port")
    args = ap.parse_args()

    server = Server(("127.0.0.1", args.port), args.script, args.log)
    open(args.log, "a").close()

    def stop(signum, frame):
        server.stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % server.server_address[1])
        os.rename(tmp, args.port_file)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
