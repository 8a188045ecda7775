#!/usr/bin/python3
"""An HTTPS server for the integration tests, on an address of the test's
choosing (127.0.0.1, or an address inside a test's network namespace).

  tls_server.py --cert PEM --key PEM [--bind ADDR] [--port N]
                [--git-root DIR] [--static DIR] [--auth USER:PASSWORD]

--git-root serves every repository under DIR with git's smart HTTP (git
http-backend run as a CGI program); --static serves the files of DIR.
--auth demands HTTP basic authentication with exactly these credentials
(a 401 otherwise). Port 0 (the default) takes a free port; once listening,
the server prints "listening on https://ADDR:PORT" on stdout. Each request
is logged on stderr with the user that authenticated, never a password.
"""

import argparse
import base64
import http.server
import os
import shutil
import socketserver
import ssl
import subprocess
import sys
import urllib.parse


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as git clients expect
    server_version = "avm-test-tls"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))
        sys.stderr.flush()

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def reply(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def authenticated_user(self):
        """The user name when the credentials match (or none are demanded);
        None after answering 401."""
        want = self.server.auth
        if want is None:
            return ""
        got = self.headers.get("Authorization", "")
        if got.startswith("Basic "):
            try:
                user_pass = base64.b64decode(got[6:]).decode()
            except ValueError:
                user_pass = ""
            if user_pass == want:
                user = user_pass.split(":", 1)[0]
                sys.stderr.write("auth ok user=%s\n" % user)
                return user
            sys.stderr.write("auth refused user=%s\n" % user_pass.split(":", 1)[0])
        # No body: libgit2 1.5 misreads the response that follows a 401
        # with a body on the same connection ("http parser error").
        self.reply(401, b"", [("WWW-Authenticate", 'Basic realm="avm-test"')])
        return None

    def handle_any(self):
        body = self.read_body() if self.command == "POST" else b""
        user = self.authenticated_user()
        if user is None:
            return
        url = urllib.parse.urlsplit(self.path)
        if self.server.git_root:
            self.git(url, user, body)
        elif self.server.static:
            self.file(url)
        else:
            self.reply(404, b"nothing served here\n")

    def file(self, url):
        rel = os.path.normpath(urllib.parse.unquote(url.path)).lstrip("/")
        path = os.path.join(self.server.static, rel)
        if rel.startswith("..") or not os.path.isfile(path):
            self.reply(404, b"not found\n")
            return
        with open(path, "rb") as f:
            self.reply(200, f.read(), [("Content-Type", "text/plain")])

    def git(self, url, user, body):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": self.server.git_root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": urllib.parse.unquote(url.path),
            "QUERY_STRING": url.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_USER": user,
        }
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        # http-backend un-gzips request bodies itself when told.
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        r = subprocess.run(["git", "http-backend"], input=body, env=env,
                           stdout=subprocess.PIPE, stderr=sys.stderr, timeout=120)
        head, _, payload = r.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = r.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.reply(status, payload, headers)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--git-root")
    p.add_argument("--static")
    p.add_argument("--auth")
    a = p.parse_args()
    if not shutil.which("git") and a.git_root:
        sys.exit("tls_server.py: git is not installed")
    srv = Server((a.bind, a.port), Handler)
    srv.git_root = os.path.abspath(a.git_root) if a.git_root else None
    srv.static = os.path.abspath(a.static) if a.static else None
    srv.auth = a.auth
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    # The handshake happens in each request's thread, so a client that
    # refuses the certificate never holds up the others.
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    print("listening on https://%s:%d" % (a.bind, srv.server_address[1]), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
