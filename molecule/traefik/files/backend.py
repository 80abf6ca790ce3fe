# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test backend for the molecule scenarios: answers every GET with JSON naming itself, the Host header and the path.

Usage: backend.py NAME PORT [CERT KEY]   (HTTPS with CERT and KEY, plain HTTP without)
"""
import http.server
import json
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):

    def do_GET(self):
        body = json.dumps({'backend': sys.argv[1], 'host': self.headers.get('Host'), 'path': self.path}).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[2])), Handler)
if len(sys.argv) > 4:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[3], sys.argv[4])
    server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
