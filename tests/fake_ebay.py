#!/usr/bin/python3
"""A fake eBay for the tests: the Finding, Marketplace Insights and Browse APIs and the
OAuth token endpoint, answered from recorded responses (tests/data/ebay), on 127.0.0.1.

  fake_ebay.py --port-file F --log L [--data DIR]

Writes the port it listens on to F once it is ready, and one JSON line per request to L
(time, method, path, query, body, authorization). Faults are queued by POSTing JSON to
/_fault: {"path": PREFIX, "kind": K, "times": N, ...}; each request whose path starts with
PREFIX takes the next one; {"clear": true} drops those not taken. Kinds:
  status        answer "status" (429, 500, ...) with eBay's error body for it, and
                "retry_after" seconds in a Retry-After header when given
  slow          wait "seconds" before answering normally
  cut           promise the whole body, send half of it and close
  invalid_json  answer 200 with a body that is not JSON
  unauthorized  answer 401 (an access token revoked): the next request goes through
  not_approved  token endpoint: 400 invalid_scope; Insights: 403, errorId 100017
  body          answer "status" (200) with the bytes of "file" (a path, or a name in DIR)
  chunked       answer "status" (200) with "file" (the Browse page) in chunks, with no length
Standard library only. It shares the CPU with what it serves in the benchmarks, so the
usual answers are cheap: the recorded bodies are read once, an answer goes out in one
write, headers are read without the email parser, and nothing is logged to /dev/null.
"""
import argparse
import http.client
import json
import os
import pathlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Headers(dict):
    """A request's headers by lower-cased name (the first of a name wins, as with email)."""

    def get(self, name, default=None):
        return dict.get(self, name.lower(), default)


def parse_headers(fp, _class=None):
    """http.client.parse_headers without the email parser (most of a request's CPU)."""
    headers = Headers()
    for _ in range(http.client._MAXHEADERS + 1):
        line = fp.readline(http.client._MAXLINE + 1)
        if len(line) > http.client._MAXLINE:
            raise http.client.LineTooLong("header line")
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, sep, value = line.decode("iso-8859-1").partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip())
    raise http.client.HTTPException("got more than %d headers" % http.client._MAXHEADERS)


# The only user of http.client's header parser in this process is the request handler.
http.client.parse_headers = parse_headers

FINDING = "/services/search/FindingService/v1"
TOKEN = "/identity/v1/oauth2/token"
INSIGHTS = "/buy/marketplace_insights/v1_beta/item_sales/search"
BROWSE = "/buy/browse/v1/item_summary/search"


class Fake:
    def __init__(self, data, log):
        self.data = pathlib.Path(data)
        self.log = None if os.path.realpath(log) == os.devnull else open(log, "a", buffering=1)
        self.faults = []
        self.lock = threading.Lock()
        self.token = json.loads(self.file("oauth-token.json"))["access_token"]
        self.recorded = {}

    def file(self, name):
        return (self.data / name).read_bytes()

    def answer(self, name):
        """A recorded body of the data folder, read once (a fault's file is read each time)."""
        body = self.recorded.get(name)
        if body is None:
            body = self.recorded[name] = self.file(name)
        return body

    def take_fault(self, path):
        with self.lock:
            for f in self.faults:
                if path.startswith(f["path"]) and f["times"] > 0:
                    f["times"] -= 1
                    return f
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake = None
    # Headers and body go out as two writes: with Nagle's algorithm on, the second
    # waits for the client's delayed ACK, 40 ms per request on a kept-alive connection.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def send(self, status, body, headers=None, cut=False):
        if not headers and not cut:
            # One write: status line, headers and body.
            self.wfile.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (status, self.responses.get(status, ("",))[0].encode(), len(body), body))
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if cut:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def record(self, body):
        if self.fake.log is None:
            return
        url = urlsplit(self.path)
        entry = {"t": time.time(), "method": self.command, "path": url.path, "query": url.query,
                 "body": body.decode("utf-8", "replace"),
                 "authorization": self.headers.get("Authorization"),
                 "marketplace": self.headers.get("X-EBAY-C-MARKETPLACE-ID"),
                 "user_agent": self.headers.get("User-Agent")}
        self.fake.log.write(json.dumps(entry) + "\n")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urlsplit(self.path).path
        if path == "/_fault":
            f = json.loads(body)
            f.setdefault("times", 1)
            with self.fake.lock:
                if f.get("clear"):
                    self.fake.faults.clear()
                else:
                    self.fake.faults.append(f)
            return self.send(200, b"{}")
        self.record(body)
        if path != TOKEN:
            return self.send(404, b'{"errors":[{"message":"no such resource"}]}')
        fault = self.fake.take_fault(path)
        if fault and self.apply(fault, path):
            return
        if not (self.headers.get("Authorization") or "").startswith("Basic "):
            return self.send(401, b'{"error":"invalid_client"}')
        self.send(200, self.fake.answer("oauth-token.json"))

    def do_GET(self):
        self.record(b"")
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        fault = self.fake.take_fault(url.path)
        if fault and self.apply(fault, url.path):
            return
        if url.path == FINDING:
            page = int(q.get("paginationInput.pageNumber", ["1"])[0])
            name = {1: "finding-completed-p1.json", 2: "finding-completed-p2.json"}.get(page)
            return self.send(200 if name else 500, self.fake.answer(name or "finding-error-ratelimit.json"))
        if url.path in (INSIGHTS, BROWSE):
            if self.headers.get("Authorization") != "Bearer " + self.fake.token:
                return self.send(401, self.fake.answer("rest-error-401.json"))
            if url.path == BROWSE:
                return self.send(200, self.fake.answer("browse-item-summary.json"))
            offset = int(q.get("offset", ["0"])[0])
            name = "insights-item-sales-p1.json" if offset < 10 else "insights-item-sales-p2.json"
            return self.send(200, self.fake.answer(name))
        self.send(404, b'{"errors":[{"message":"no such resource"}]}')

    def apply(self, fault, path):
        kind = fault.get("kind", "status")
        if kind == "slow":
            time.sleep(fault.get("seconds", 5))
            return False
        if kind == "cut":
            body = self.fake.file("browse-item-summary.json")
            self.send(200, body, cut=True)
            return True
        if kind == "chunked":
            # The page in chunks, with no Content-Length: its size is known only as it comes.
            body = self.fake.file(fault.get("file", "browse-item-summary.json"))
            self.send_response(fault.get("status", 200))
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 1000):
                piece = body[i:i + 1000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return True
        if kind == "invalid_json":
            self.send(200, b'{"itemSummaries": [ not json')
            return True
        if kind == "body":
            self.send(fault.get("status", 200), self.fake.file(fault["file"]))
            return True
        if kind == "unauthorized":
            self.send(401, self.fake.file("rest-error-401.json"))
            return True
        if kind == "not_approved":
            if path == TOKEN:
                self.send(400, self.fake.file("oauth-error-invalid-scope.json"))
            else:
                self.send(403, self.fake.file("insights-error-not-approved.json"))
            return True
        status = fault.get("status", 500)
        if path == FINDING:
            body = self.fake.file(fault.get("body", "finding-error-ratelimit.json"))
        elif status == 429:
            body = self.fake.file("rest-error-429.json")
        else:
            body = b'{"errors":[{"errorId":10000,"message":"There was a problem with an eBay internal system or process."}]}'
        headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else {}
        self.send(status, body, headers)
        return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--data", default=str(pathlib.Path(__file__).parent / "data" / "ebay"))
    args = ap.parse_args()
    Handler.fake = Fake(args.data, args.log)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
