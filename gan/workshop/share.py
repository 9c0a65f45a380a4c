"""Owns the Share panel's facts: the address the room can reach (this machine's LAN address, not 127.0.0.1) and
its QR code. Must not put the presenter token (or any query) in what it shares.

The LAN address is the one the operating system would send from (a UDP socket "connected" to a private address
sends nothing), so it works offline on a workshop router. Where there is no network at all it says so."""

from __future__ import annotations

import io
import ipaddress
import os
import socket
from dataclasses import dataclass

import segno

MY_RUN_PATH = "my_run"  # the page a participant opens (pages/my_run.py, url_path my_run)


@dataclass(frozen=True)
class Share:
    url: str  # http://192.168.1.20:8501/my_run
    lan: bool  # False: only this machine can open it (no network found)
    note: str = ""  # what the presenter should know (no LAN address, a proxy's address given by hand)


def lan_address() -> str | None:
    """This machine's address on the local network, or None when it has none (loopback only)."""
    for probe in ("10.255.255.255", "192.168.255.255", "172.31.255.255"):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))  # no packet leaves: connect() on UDP only picks the route
                ip = s.getsockname()[0]
        except OSError:
            continue
        if not ipaddress.ip_address(ip).is_loopback and not ipaddress.ip_address(ip).is_unspecified:
            return ip
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            ip = info[4][0]
            if not ipaddress.ip_address(ip).is_loopback:
                return ip
    except OSError:
        pass
    return None


def share_url(port: int, base_path: str = "", public: str | None = None) -> Share:
    """The address to give the room. ``public`` (GAN_LIVE_PUBLIC_URL, e.g. behind a proxy) wins when set; it is
    used as given, minus any query (a token must never be shared)."""
    public = (public if public is not None else os.environ.get("GAN_LIVE_PUBLIC_URL", "")).strip()
    base = "/".join(p for p in base_path.strip("/").split("/") if p)
    path = f"/{base}/{MY_RUN_PATH}" if base else f"/{MY_RUN_PATH}"
    if public:
        root = public.split("?", 1)[0].split("#", 1)[0].rstrip("/")
        return Share(root + f"/{MY_RUN_PATH}", True, "from GAN_LIVE_PUBLIC_URL")
    ip = lan_address()
    if ip is None:
        return Share(f"http://127.0.0.1:{port}{path}", False,
                     "No network found: only this machine can open it. Join the room's Wi-Fi (or a phone's "
                     "hotspot) and reload.")
    return Share(f"http://{ip}:{port}{path}", True)


def qr_png(url: str, scale: int = 8) -> bytes:
    """A QR code of ``url`` as PNG bytes (segno: pure Python, offline), dark on white with the quiet zone."""
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="png", scale=scale, border=4)
    return buf.getvalue()
