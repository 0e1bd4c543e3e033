"""A minimal Chrome DevTools Protocol client for the browser tests: launch headless Chromium,
talk to one page over a WebSocket (RFC 6455 text frames, written here: no extra package)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")

#: seconds a wait may last before it counts as "never": generous, so that a slow or loaded
#: machine only waits longer (every wait polls and returns as soon as its condition holds)
PATIENCE_S = 600.0


def find_chromium() -> str | None:
    """The first Chromium-like binary on PATH ($VIDCAM_CHROMIUM overrides), or None."""
    env = os.environ.get("VIDCAM_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


class WebSocket:
    """A client WebSocket over a plain socket: the opening handshake, masked text frames out,
    unmasked frames in (continuation frames joined, pings answered)."""

    def __init__(self, url: str, timeout: float = PATIENCE_S) -> None:
        u = urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the browser closed the WebSocket during the handshake")
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"WebSocket handshake refused: {head[:200]!r}")

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("the browser closed the WebSocket")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def send(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def recv(self) -> str:
        parts: list[bytes] = []
        while True:
            b0, b1 = self._read(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack(">H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack(">Q", self._read(8))
            mask = self._read(4) if b1 & 0x80 else b""
            data = self._read(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            if opcode == 0x9:  # ping
                self._send_frame(0xA, data)
                continue
            if opcode == 0x8:
                raise ConnectionError("the browser closed the WebSocket")
            if opcode in (0x1, 0x0, 0x2):
                parts.append(data)
                if b0 & 0x80:
                    return b"".join(parts).decode()

    def close(self) -> None:
        with contextlib.suppress(OSError):  # the browser may have gone already
            self._send_frame(0x8, b"")
        self.sock.close()


class Browser:
    """Headless Chromium on one page: ``with Browser(exe, url, tmp) as b: b.evaluate(...)``."""

    def __init__(
        self, exe: str, url: str, user_dir: Path, *, width: int = 1280, height: int = 1000
    ):
        self.user_dir = Path(user_dir)
        self.proc = subprocess.Popen(
            [
                exe,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--mute-audio",
                "--no-first-run",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.user_dir}",
                "--autoplay-policy=no-user-gesture-required",
                f"--window-size={width},{height}",
                url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.events: list[dict] = []
        self.next_id = 0
        try:
            port = self._port()
            self.ws = WebSocket(self._page_ws(port, url))
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise

    def _port(self, timeout: float = PATIENCE_S) -> int:
        f = self.user_dir / "DevToolsActivePort"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with status {self.proc.returncode}")
            if f.exists():
                lines = f.read_text().split()
                if lines:
                    return int(lines[0])
            time.sleep(0.1)
        raise TimeoutError("chromium wrote no DevToolsActivePort")

    def _page_ws(self, port: int, url: str, timeout: float = PATIENCE_S) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            url_list = f"http://127.0.0.1:{port}/json/list"
            with urllib.request.urlopen(url_list, timeout=PATIENCE_S) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.1)
        raise TimeoutError(f"no page target for {url}")

    def call(self, method: str, **params) -> dict:
        """Send one CDP command and return its result (events seen meanwhile are kept)."""
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def evaluate(self, expression: str, *, await_promise: bool = False):
        """The JSON value of a JavaScript expression in the page."""
        r = self.call(
            "Runtime.evaluate",
            expression=expression,
            returnByValue=True,
            awaitPromise=await_promise,
        )
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression!r} threw: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = PATIENCE_S, interval: float = 0.1):
        """Poll ``expression`` until it is truthy; its last value (TimeoutError if never)."""
        end = time.monotonic() + timeout
        while True:
            v = self.evaluate(expression)
            if v:
                return v
            if time.monotonic() > end:
                raise TimeoutError(f"{expression!r} stayed {v!r} for {timeout} s")
            time.sleep(interval)

    def click(self, x: float, y: float) -> None:
        """A real left click at viewport CSS pixel (x, y)."""
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            extra = {"button": "left", "clickCount": 1} if kind != "mouseMoved" else {}
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, **extra)

    def screenshot(self, *, full_page: bool = False) -> bytes:
        """A PNG of the viewport (or the whole page)."""
        return base64.b64decode(
            self.call("Page.captureScreenshot", format="png", captureBeyondViewport=full_page)[
                "data"
            ]
        )

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
