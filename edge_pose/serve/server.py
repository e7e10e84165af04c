"""The headless service's HTTP server: live view, JSON results, SSE, MJPEG, a pose endpoint and metrics.

Library: the standard library's `http.server.ThreadingHTTPServer`. A Jetson service serves a handful of
clients (a browser, a Prometheus scraper, a script); one thread per connection handles the long-lived MJPEG
and SSE responses with plain blocking writes, and nothing has to be installed next to JetPack's Python 3.8.
An ASGI stack (uvicorn + starlette) would add three dependencies and an event loop to hand frames into from
the pipeline's threads, for no gain at this scale. Streams are capped (`ServeParams.max_streams`).

Routes (GET unless marked):
    /                 live page (static/index.html + app.js): the annotated view and people / FPS / latency
    /static/NAME      the page's files; only names present in the package's static folder (no paths)
    /stream.mjpg      multipart/x-mixed-replace MJPEG of the annotated frames
    /api/frame        the newest frame record (JSON); 503 before the first frame
    /api/events       server-sent events, one `data:` line of frame-record JSON per frame (id: frame seq)
    /api/pose  POST   image in (JPEG/PNG bytes, or multipart/form-data field `image`/`file`), persons out
    /metrics          Prometheus text exposition (see metrics.py)
    /healthz          200 {"status": "ok"} while frames flow; 503 "starting" / "stalled" / "stopped"

Access: binds 127.0.0.1 unless `host` says otherwise. With a `token`, every route but /healthz needs
`Authorization: Bearer TOKEN` or `?token=TOKEN` (for browsers: <img> and EventSource cannot send headers);
401 otherwise. /healthz stays open for systemd / container / load-balancer probes, which rarely carry
secrets; it tells only the status, frame count and frame age. The page and its script are data-free and
also open, so that the page can tell the user it needs ?token=. Errors answer JSON {"error": ...}: 400
malformed, 401, 404 unknown path, 405 wrong method, 411 / 413 POST without length / over max_body_bytes,
415 not an image type, 503 unavailable; a bad request never stops the server.
"""
from __future__ import annotations

import hmac
import json
import logging
import mimetypes
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import parse_qs, urlsplit

from edge_pose.serve.hub import to_json
from edge_pose.serve.upload import UploadError, decode_image

log = logging.getLogger(__name__)

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
BOUNDARY = "edgeposeframe"
KEEPALIVE_S = 10.0  # SSE comment / MJPEG re-check interval while no frame comes


@dataclass
class ServeParams:
    """The `http:` section of the service config."""

    host: str = "127.0.0.1"  # "0.0.0.0" (or "::") to serve the network
    port: int = 8080  # 0: any free port (see PoseServer.port)
    token: Optional[str] = None  # bearer token required by every route but /healthz
    max_body_bytes: int = 8 * 1024 * 1024  # largest POST /api/pose body (413 above)
    jpeg_quality: int = 80  # MJPEG frames
    stall_seconds: float = 5.0  # /healthz answers 503 when no frame came for longer
    max_streams: int = 8  # open MJPEG + SSE clients at most (503 above)
    timeout: float = 30.0  # socket timeout: idle or slow clients are dropped after it

    def validate(self):
        """Raise ValueError naming the bad field."""
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ValueError("http.port: %r is not a port number (0-65535)" % (self.port,))
        if self.token is not None and (not isinstance(self.token, str) or not self.token.strip()):
            raise ValueError("http.token: a non-empty string or null")
        for name in ("max_body_bytes", "max_streams"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError("http.%s: a positive integer, got %r" % (name, getattr(self, name)))
        if not 1 <= int(self.jpeg_quality) <= 100:
            raise ValueError("http.jpeg_quality: 1-100, got %r" % (self.jpeg_quality,))
        for name in ("stall_seconds", "timeout"):
            if not float(getattr(self, name)) > 0:
                raise ValueError("http.%s: a positive number of seconds, got %r" % (name, getattr(self, name)))
        return self


def load_static(folder=STATIC_DIR):
    """{"/static/NAME": (bytes, content type)} of the files in `folder` (not recursive), read once."""
    files = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and not name.startswith("."):
            ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
            if ctype.startswith("text/") or ctype in ("application/javascript", "text/javascript"):
                ctype += "; charset=utf-8"
            with open(path, "rb") as f:
                files["/static/" + name] = (f.read(), ctype)
    return files


def image_pose_fn(estimator, person_source="full-frame", **options):
    """A pose_fn for /api/pose: each image gets a fresh person source (no state between requests).

    estimator: a PoseEstimator (or any `fn(frame, boxes) -> person dicts`); person_source: a
    persons.make_person_source mode ("full-frame": one person, the whole image; "windows": scan for several).
    """
    from edge_pose.persons import make_person_source

    def pose_fn(image_bgr):
        return make_person_source(person_source, **options)(image_bgr, estimator)

    return pose_fn


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address, handler, app):
        self.app = app
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def handle_error(self, request, client_address):
        log.warning("error serving %s", client_address, exc_info=True)


class PoseServer:
    """The HTTP service over a LiveHub.

        hub = LiveHub(); server = PoseServer(hub, ServeParams(port=8080), pose_fn=...).start()
        ... pipeline calls hub.publish(record, annotated) ...
        server.stop()

    pose_fn: `fn(image_bgr) -> list of person dicts` for POST /api/pose (None: that route answers 503);
    called under a lock, one request at a time. sysfs_root: where metrics read sensors (tests).
    """

    def __init__(self, hub, params=None, pose_fn=None, sysfs_root="/"):
        self.hub = hub
        self.params = (params or ServeParams()).validate()
        hub.jpeg_quality = int(self.params.jpeg_quality)
        self.pose_fn = pose_fn
        self.pose_lock = threading.Lock()
        self.static = load_static()
        self.stopping = threading.Event()
        self.sysfs_root = sysfs_root
        self._registry = None
        self._httpd = None
        self._thread = None

    # ----------------------------------------------------------------------------------------- lifecycle
    def start(self):
        """Bind and serve in a daemon thread; returns self."""
        self._httpd = _HTTPServer((self.params.host, int(self.params.port)), _Handler, self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="http-server", daemon=True)
        self._thread.start()
        log.info("serving on %s", self.url)
        return self

    def stop(self):
        """Stop accepting, end the streams (hub.close()), close the listening socket."""
        self.stopping.set()
        self.hub.close()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def address(self):
        """(host, port) actually bound."""
        return self._httpd.server_address[:2]

    @property
    def port(self):
        return self.address[1]

    @property
    def url(self):
        host, port = self.address
        return "http://%s:%d" % ("[%s]" % host if ":" in host else host, port)

    # ------------------------------------------------------------------------------------------ helpers
    def authorized(self, headers, query):
        token = self.params.token
        if not token:
            return True
        given = None
        auth = headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        elif "token" in query:
            given = query["token"][-1]
        return given is not None and hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))

    def metrics_body(self):
        from edge_pose.serve.metrics import exposition, make_registry

        if self._registry is None:
            self._registry = make_registry(self.hub, self.sysfs_root)
        return exposition(self._registry)

    def health(self):
        """(HTTP status, body dict) of /healthz."""
        age = self.hub.age()
        body = {"frames": self.hub.seq, "age_s": None if age is None else round(age, 3),
                "stall_seconds": self.params.stall_seconds}
        if self.hub.closed or self.stopping.is_set():
            return 503, dict(body, status="stopped")
        if age is None:
            return 503, dict(body, status="starting")
        if age > self.params.stall_seconds:
            return 503, dict(body, status="stalled")
        return 200, dict(body, status="ok")


_TOKEN_RE = re.compile(r"([?&]token=)[^&\s]*")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "edge-pose"
    sys_version = ""  # the Server header does not name the Python version
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

    GET_ROUTES = {"/": "page", "/index.html": "page", "/stream.mjpg": "mjpeg", "/api/frame": "frame",
                  "/api/events": "events", "/metrics": "metrics", "/healthz": "healthz"}
    POST_ROUTES = {"/api/pose": "pose"}
    OPEN = ("/healthz", "/", "/index.html")

    def setup(self):
        self.timeout = self.server.app.params.timeout
        super().setup()

    @property
    def app(self):
        return self.server.app

    # ----------------------------------------------------------------------------------------- dispatch
    def do_GET(self):  # noqa: N802 (http.server's naming)
        self._dispatch("GET")

    def do_HEAD(self):  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self):  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self):  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self):  # noqa: N802
        self._dispatch("DELETE")

    def do_PATCH(self):  # noqa: N802
        self._dispatch("PATCH")

    def do_OPTIONS(self):  # noqa: N802
        self._dispatch("OPTIONS")

    def _dispatch(self, method):
        self._body_read = False
        self._headers_sent = False
        try:
            parts = urlsplit(self.path)
            path, query = parts.path, parse_qs(parts.query)
        except ValueError:
            return self._error(400, "malformed request target")
        get_route = self.GET_ROUTES.get(path)
        post_route = self.POST_ROUTES.get(path)
        static = self.app.static.get(path)
        if get_route is None and post_route is None and static is None:
            return self._error(404, "not found")
        allowed = "POST" if post_route else "GET, HEAD"
        if method not in allowed.split(", "):
            return self._error(405, "method %s not allowed on %s" % (method, path), {"Allow": allowed})
        is_static = static is not None or get_route == "page"
        if not (is_static or path in self.OPEN or self.app.authorized(self.headers, query)):
            return self._error(401, "bearer token required", {"WWW-Authenticate": 'Bearer realm="edge-pose"'})
        try:
            if static is not None:
                return self._send(200, static[0], static[1])
            route = get_route or post_route
            return getattr(self, "_route_" + route)(query)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True
        except Exception:
            log.exception("error handling %s %s", method, self._log_path())
            if not self._headers_sent:
                self._error(500, "internal error")
            self.close_connection = True

    # ------------------------------------------------------------------------------------------- routes
    def _route_page(self, query):
        body, ctype = self.app.static["/static/index.html"]
        return self._send(200, body, ctype)

    def _route_healthz(self, query):
        status, body = self.app.health()
        return self._send_json(status, body)

    def _route_frame(self, query):
        seq, data = self.app.hub.latest_json()
        if data is None:
            return self._error(503, "no frame yet")
        return self._send(200, data, "application/json", {"X-Frame-Seq": str(seq)})

    def _route_metrics(self, query):
        try:
            body, ctype = self.app.metrics_body()
        except ImportError:
            return self._error(503, "prometheus_client is not installed (pip install prometheus-client)")
        return self._send(200, body, ctype)

    def _route_pose(self, query):
        if self.app.pose_fn is None:
            return self._error(503, "no pose model behind /api/pose")
        body = self._read_body()
        if body is None:
            return None
        try:
            image = decode_image(body, self.headers.get("Content-Type", ""))
        except UploadError as e:
            return self._error(e.status, str(e))
        from edge_pose.sinks import person_record

        t0 = time.perf_counter()
        with self.app.pose_lock:
            people = self.app.pose_fn(image)
        ms = 1e3 * (time.perf_counter() - t0)
        out = {"width": int(image.shape[1]), "height": int(image.shape[0]), "ms": round(ms, 2),
               "persons": [person_record(p) for p in people]}
        return self._send(200, to_json(out), "application/json")

    def _route_mjpeg(self, query):
        def part(seq, data):
            return (b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\nX-Frame-Seq: %d\r\n\r\n"
                    % (BOUNDARY.encode(), len(data), seq)) + data + b"\r\n"

        return self._stream("mjpeg", "multipart/x-mixed-replace; boundary=" + BOUNDARY,
                            self.app.hub.latest_jpeg, part, None)

    def _route_events(self, query):
        def event(seq, data):
            return b"id: %d\ndata: %s\n\n" % (seq, data)

        return self._stream("sse", "text/event-stream", self.app.hub.latest_json, event, b"retry: 2000\n\n")

    def _stream(self, kind, ctype, latest, frame_bytes, preamble):
        """Send the newest frame, then each new one, until the client leaves or the hub / server stops."""
        app, hub = self.app, self.app.hub
        if hub.closed or app.stopping.is_set():
            return self._error(503, "the pipeline has stopped")
        if not hub.open_stream(kind, app.params.max_streams):
            return self._error(503, "too many streams open (max_streams=%d)" % app.params.max_streams)
        try:
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Cache-Control", "no-cache, no-store")
            self.send_header("Connection", "close")
            self.send_header("X-Accel-Buffering", "no")
            self.end_headers()
            self._headers_sent = True
            if self.command == "HEAD":
                return None
            if preamble:
                self.wfile.write(preamble)
            sent = 0
            while not (hub.closed or app.stopping.is_set()):
                seq, data = latest()
                if seq > sent:
                    sent = seq
                    if data is not None:  # (a frame published without an image has no MJPEG part)
                        self.wfile.write(frame_bytes(seq, data))
                        self.wfile.flush()
                    continue
                if hub.wait(sent, KEEPALIVE_S)[0] <= sent and kind == "sse":
                    self.wfile.write(b": keepalive\n\n")  # also finds clients that went away
                    self.wfile.flush()
        finally:
            hub.close_stream(kind)
        return None

    # ------------------------------------------------------------------------------------------ request
    def _read_body(self):
        """The POST body (bytes), or None after answering 400 / 411 / 413."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._error(411, "send a Content-Length (chunked bodies are not accepted)")
        values = self.headers.get_all("Content-Length") or []
        if not values:
            return self._error(411, "Content-Length required")
        if len(set(v.strip() for v in values)) != 1 or not values[0].strip().isdigit():
            return self._error(400, "bad Content-Length %r" % ", ".join(values))
        length = int(values[0])
        limit = self.app.params.max_body_bytes
        if length > limit:
            self._drain(length)
            return self._error(413, "body of %d bytes is over the limit of %d" % (length, limit))
        body = self.rfile.read(length)
        self._body_read = True
        if len(body) != length:
            return self._error(400, "body shorter than its Content-Length (%d of %d bytes)" % (len(body), length))
        return body

    def _drain(self, length, most=1 << 20, seconds=1.0):
        """Read (up to `most` bytes, `seconds`) of a refused body, so closing does not reset the connection
        before the client has read the answer."""
        try:
            self.connection.settimeout(seconds)
            left = min(length, most)
            while left > 0:
                chunk = self.rfile.read1(min(left, 65536)) if hasattr(self.rfile, "read1") else b""
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    # ----------------------------------------------------------------------------------------- response
    def _send(self, status, body, ctype, headers=None):
        if self.command in ("POST", "PUT", "PATCH") and not self._body_read:
            self.close_connection = True  # the unread body would be taken for the next request
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self._headers_sent = True
        if self.command != "HEAD":
            self.wfile.write(body)
        return None

    def _send_json(self, status, obj, headers=None):
        return self._send(status, json.dumps(obj).encode("utf-8"), "application/json", headers)

    def _error(self, status, message, headers=None):
        return self._send_json(status, {"error": message, "status": int(status)}, headers)

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (bad request line, headers, version) as JSON, connection closed."""
        short = self.responses.get(code, ("error",))[0]
        self.log_error("code %d, message %s", code, message or short)
        self.close_connection = True
        body = json.dumps({"error": message or short, "status": int(code)}).encode("utf-8")
        self.send_response(code, short)
        self.send_header("Connection", "close")
        with_body = code >= 200 and code not in (204, 304) and self.command != "HEAD"
        if with_body:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    # ------------------------------------------------------------------------------------------ logging
    def _log_path(self):
        return _TOKEN_RE.sub(r"\1***", getattr(self, "path", "") or "")

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        text = format % args
        log.debug("%s %s", self.address_string(), _TOKEN_RE.sub(r"\1***", text))

    def log_error(self, format, *args):  # noqa: A002
        log.info("%s %s", self.address_string(), _TOKEN_RE.sub(r"\1***", format % args))


__all__ = ["PoseServer", "ServeParams", "image_pose_fn"]
