"""`python -m gan serve`: the app for a room, locked, with the two links to hand out.

`streamlit run app.py` alone starts the app with no presenter lock: every browser that reaches it gets Start,
Stop and the rest. In a workshop that is the wrong default, so this command does what the README used to ask a
presenter to type: it picks a fresh token (or takes GAN_LIVE_TOKEN / --token), prints the presenter link (keep
it private) and the link for everyone else, then runs `streamlit run app.py` with that token, listening on the
network (or on this machine only, with --local). Ctrl-C stops the server and its training process.
"""

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from gan.workshop import share

REPO = Path(__file__).resolve().parents[2]
TOKEN_ENV = "GAN_LIVE_TOKEN"


def lan_address() -> str:
    """This machine's address on the local network, for the links (gan.workshop.share finds it, as for the Share
    panel); 127.0.0.1 when it has none (offline)."""
    return share.lan_address() or "127.0.0.1"


def choose_token(given: str | None, env: dict) -> str:
    """--token, else GAN_LIVE_TOKEN, else a fresh random one (a new token per workshop)."""
    token = (given if given is not None else env.get(TOKEN_ENV, "")).strip()
    return token or secrets.token_urlsafe(12)


def links(host: str, port: int, token: str) -> dict[str, str]:
    base = f"http://{host}:{port}/"
    return {"presenter": f"{base}?token={token}", "everyone": base}


def streamlit_command(port: int, address: str) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.port", str(port),
            "--server.address", address, "--server.headless", "true", "--browser.gatherUsageStats", "false"]


def build_parser():
    from gan.tools.cli import OneLineParser  # a usage mistake is one line and exit status 2, as for every command

    p = OneLineParser(prog="python -m gan serve", description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    p.add_argument("--local", action="store_true",
                   help="listen on this machine only (default: the local network, so the room can connect)")
    p.add_argument("--token", default=None, help=f"the presenter token (default: ${TOKEN_ENV}, else a new one)")
    p.add_argument("--lab", action="store_true",
                   help="start with lab mode on: every participant trains their own run (also GAN_LIVE_LAB=1)")
    return p


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed in one line
        return 2 if exc.code else 0
    if not 1 <= args.port <= 65535:
        print(f"error: --port must be 1-65535, got {args.port}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    token = choose_token(args.token, env)
    env[TOKEN_ENV] = token
    host = "127.0.0.1" if args.local else lan_address()
    urls = links(host, args.port, token)
    print(f"Presenter (keep this link private; it holds the controls): {urls['presenter']}")
    print(f"Everyone else (watch only; write it on the board):      {urls['everyone']}")
    if args.lab:
        env["GAN_LIVE_LAB"] = "1"
        print(f"Lab: each participant opens (the Room page shows it as a QR code): {urls['everyone']}"
              f"{share.MY_RUN_PATH}")
    if host == "127.0.0.1" and not args.local:
        print("No network found: only this machine can open the app.")
    sys.stdout.flush()
    server = subprocess.Popen(streamlit_command(args.port, "127.0.0.1" if args.local else "0.0.0.0"), env=env,
                              cwd=REPO)
    # `kill`, systemd or docker stop this process alone: the server must stop with it (and stop its training
    # process and autosave, as on Ctrl-C), not run on without its terminal.
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    try:
        return server.wait()
    except KeyboardInterrupt:  # the server got the same Ctrl-C: let it stop its training process and autosave
        try:
            return server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            return 130
