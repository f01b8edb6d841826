"""The gateway as the role ships it, on this machine: the offgrid_gateway role's config tasks
render nginx.conf, gateway.js and tokens.map into a scratch directory (ansible-playbook over a
local connection, with the role's own defaults), and Debian's nginx serves them as an
unprivileged user on loopback high ports. Shared by the gateway's integration tests, the
auditor's gateway probes' tests and benchmarks/bench_gateway.py."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
NGINX = Path("/usr/sbin/nginx")
GATEWAY_USER = "nobody"
GATEWAY_GROUP = "nogroup"
STORE_SCHEMA = "offgrid-gateway-tokens/1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_token() -> tuple[str, str]:
    """(id, token) in the store's token format: ogk_<12 hex>_<43 urlsafe base64>."""
    token_id = secrets.token_hex(6)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return token_id, f"ogk_{token_id}_{secret}"


def store_entry(token_id: str, user: str, token: str, **dates: str | None) -> dict[str, Any]:
    return {
        "id": token_id,
        "user": user,
        "sha256": hashlib.sha256(token.encode()).hexdigest(),
        "issued_at": dates.get("issued_at", "2026-01-01T00:00:00Z"),
        "expires_at": dates.get("expires_at"),
        "revoked_at": dates.get("revoked_at"),
    }


def write_store(path: Path, entries: list[dict[str, Any]]) -> None:
    body = {"schema": STORE_SCHEMA, "tokens": sorted(entries, key=lambda e: e["id"])}
    path.write_text(json.dumps(body))
    path.chmod(0o600)


def make_tls(directory: Path, days: int = 365, ip: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for one IP address and its key (openssl)."""
    cert, key = directory / "gateway.crt", directory / "gateway.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", str(days),
            "-subj", "/CN=offgrid-gateway-test", "-addext", f"subjectAltName=IP:{ip}",
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@dataclass
class Gateway:
    """A rendered gateway directory and, once started, its nginx master."""

    root: Path
    variables: dict[str, Any]
    process: subprocess.Popen[bytes] | None = None
    log: list[str] = field(default_factory=list)

    @property
    def conf_dir(self) -> Path:
        return self.root / "conf"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def access_log(self) -> Path:
        return self.log_dir / "access.log"

    @property
    def local_url(self) -> str:
        return f"http://{self.variables['offgrid_gateway_local_listen']}"

    @property
    def team_url(self) -> str:
        return f"https://{self.variables['offgrid_gateway_team_listen']}"

    def render(self, **overrides: Any) -> str:
        """Run the role's config tasks with these variables; returns ansible's output."""
        self.variables.update(overrides)
        return render(self.root, self.variables)

    def start(self) -> None:
        self.process = start_nginx(self.root)

    def reload(self) -> None:
        """SIGHUP, as systemctl reload does, and wait until only new workers serve."""
        assert self.process is not None
        master = psutil.Process(self.process.pid)
        old = {child.pid for child in master.children()}
        self.process.send_signal(signal.SIGHUP)
        for _ in range(200):
            now = {child.pid for child in master.children()}
            if now and not now & old:
                return
            time.sleep(0.05)
        raise AssertionError("nginx did not replace its workers after SIGHUP")

    def stop(self) -> None:
        if self.process is not None:
            stop_nginx(self.process)
            self.process = None


def base_variables(root: Path, upstream: str, engine: str = "llamacpp") -> dict[str, Any]:
    return {
        "offgrid_gateway_engine": engine,
        "offgrid_gateway_upstream": upstream,
        "offgrid_gateway_local_listen": f"127.0.0.1:{free_port()}",
        "offgrid_gateway_team_listen": f"127.0.0.1:{free_port()}",
        "offgrid_gateway_group": GATEWAY_GROUP,
        "offgrid_gateway_conf_dir": str(root / "conf"),
        "offgrid_gateway_run_dir": str(root / "run"),
        "offgrid_gateway_log_dir": str(root / "log"),
        # No systemd here: the handlers that reload the unit are the service concern's.
        "offgrid_gateway_service_enabled": False,
    }


def render(root: Path, variables: dict[str, Any]) -> str:
    (root / "vars.json").write_text(json.dumps(variables))
    (root / "play.yml").write_text(
        "- name: Render the gateway's configuration\n  hosts: localhost\n  gather_facts: false\n"
        "  tasks:\n    - name: The role's config tasks\n      ansible.builtin.include_role:\n"
        "        name: offgrid_gateway\n        tasks_from: config.yml\n"
    )
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(root / "ansible-local"),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
    }
    result = subprocess.run(
        [
            str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-c", "local",
            "-e", f"@{root / 'vars.json'}", str(root / "play.yml"),
        ],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(f"rendering failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _prepare_dirs(root: Path) -> None:
    user = pwd.getpwnam(GATEWAY_USER)
    root.chmod(0o755)
    for name in ("run", "log"):
        path = root / name
        path.mkdir(exist_ok=True)
        os.chown(path, user.pw_uid, user.pw_gid)
        path.chmod(0o750)


def start_nginx(root: Path, timeout_s: float = 30.0) -> subprocess.Popen[bytes]:
    """nginx in the foreground as nobody, with the rendered configuration; waits until the
    local listener accepts."""
    _prepare_dirs(root)
    variables = json.loads((root / "vars.json").read_text())
    conf, error_log = root / "conf" / "nginx.conf", root / "log" / "error.log"
    argv = [str(NGINX), "-e", str(error_log), "-c", str(conf), "-g", "daemon off;"]
    check = subprocess.run(
        [*argv[:-2], "-t", "-q"], user=GATEWAY_USER, group=GATEWAY_GROUP, extra_groups=[],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if check.returncode != 0:
        raise AssertionError(f"nginx -t refused the configuration: {check.stderr}")
    process = subprocess.Popen(
        argv, user=GATEWAY_USER, group=GATEWAY_GROUP, extra_groups=[],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    host, port = str(variables["offgrid_gateway_local_listen"]).rsplit(":", 1)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"nginx exited: {error_log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection((host, int(port)), 0.5):
            return process
        time.sleep(0.05)
    stop_nginx(process)
    raise AssertionError("nginx never accepted on the local listener")


def stop_nginx(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def gateway(upstream: str, **variables: Any) -> Iterator[Gateway]:
    """A rendered and started gateway in a fresh directory the unprivileged nginx can reach
    (pytest's own are root-only); stopped and removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="offgrid-gateway-"))
    try:
        gw = Gateway(root, {**base_variables(root, upstream), **variables})
        gw.render()
        gw.start()
        try:
            yield gw
        finally:
            gw.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
