#!/usr/bin/env python3
"""A loopback HTTP server for the downloader tests (standard library only).

Serves files from --root on 127.0.0.1 and misbehaves on request, by path prefix:
  /ok/NAME        the file, with Content-Length
  /truncate/NAME  announces the full length, sends half, then closes the connection
  /html/NAME      a 200 text/html page instead of the file
  /markup/NAME    a 200 application/octet-stream whose body is an HTML page
  /missing/NAME   404
Prints the chosen port on the first line of stdout, then serves until its standard input
reaches end of file (the test closes it), so no signal has to reach through wrappers such as
pyenv's shell shims.
"""
import argparse
import http.server
import os
import socketserver
import sys
import threading


def make_handler(root):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            parts = self.path.strip("/").split("/", 1)
            if len(parts) != 2:
                self.send_error(404)
                return
            mode, name = parts
            path = os.path.join(root, os.path.basename(name))
            if mode == "missing" or not os.path.isfile(path):
                self.send_error(404)
                return
            with open(path, "rb") as handle:
                body = handle.read()
            if mode in ("html", "markup"):
                page = b"<!DOCTYPE html><html><body>Sign in to continue</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html" if mode == "html" else "application/octet-stream")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if mode == "truncate":
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    args = parser.parse_args()
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), make_handler(args.root)) as server:
        print(server.server_address[1], flush=True)

        def exit_when_parent_closes_stdin():
            sys.stdin.read()
            os._exit(0)

        threading.Thread(target=exit_when_parent_closes_stdin, daemon=True).start()
        server.serve_forever()


if __name__ == "__main__":
    main()
