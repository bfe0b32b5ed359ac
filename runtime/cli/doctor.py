"""`gati doctor`: what this machine and this project need, each checked, each with its fix.

    machine   Docker engine, bubblewrap (a real sandbox started), user namespaces, cgroups,
              the toolchain of each module template, the container base images
    project   gati.toml, the port it serves on, the state directory, every module's manifest
              and artifact, the audit log's hash chain

Each check is ok, warn (something works less well, or one kind of module cannot be used) or
fail (the project cannot run as it is). Exit 1 when any check fails; `--json` for machines.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import docker
import docker.errors
import typer
from rich.markup import escape
from rich.table import Table

from runtime.cli.common import JsonOpt, ProjectOpt, open_state, out, print_json, user_errors
from runtime.cli.new import LANGUAGES
from runtime.core.audit_log import verify as verify_chain
from runtime.core.errors import GatiError
from runtime.core.manifest import load_manifest
from runtime.core.state import StateDir
from runtime.http.project import CONFIG_FILE, is_project, load_project
from runtime.modules.build import needs_build, up_to_date
from sandboxes.native.limits import CGROUP_FS, CONTROLLERS
from sandboxes.oci import available as docker_problem
from sandboxes.oci import images

SETUP = "run scripts/install-system-deps.sh as root (make setup does)"
OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Check:
    area: str
    name: str
    status: str
    detail: str
    fix: str = ""


def _run(*cmd: str, timeout: float = 20) -> tuple[bool, str]:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return done.returncode == 0, (done.stdout + done.stderr).strip().splitlines()[-1:][0] if (done.stdout + done.stderr).strip() else ""


# the machine ---------------------------------------------------------------------------------------


def check_docker() -> Check:
    problem = docker_problem()
    if problem:
        return Check("machine", "docker engine", WARN, f"oci modules cannot run: {problem}", SETUP + ", or start dockerd (scripts/start-docker.sh)")
    return Check("machine", "docker engine", OK, "answers")


def check_bwrap() -> Check:
    if shutil.which("bwrap") is None:
        return Check("machine", "bubblewrap", WARN, "native modules cannot run: bwrap is not installed", "apt-get install bubblewrap, or " + SETUP)
    ok, said = _run(
        "bwrap", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
        "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev", "--unshare-all", "--die-with-parent", "/usr/bin/true",
    )
    if not ok:
        return Check("machine", "bubblewrap", FAIL, f"bwrap cannot start a sandbox here: {said}", "allow user namespaces (sysctl kernel.unprivileged_userns_clone=1) or run gati as root")
    return Check("machine", "bubblewrap", OK, "starts a sandbox with every namespace unshared")


def check_userns() -> Check:
    try:
        limit = int(Path("/proc/sys/user/max_user_namespaces").read_text())
    except (OSError, ValueError):
        limit = None
    if limit == 0:
        return Check("machine", "user namespaces", WARN, "max_user_namespaces is 0: bwrap works only as root", "sysctl -w user.max_user_namespaces=15000")
    ok, said = _run("unshare", "--user", "--map-root-user", "true") if shutil.which("unshare") else (False, "unshare is not installed")
    if not ok:
        return Check("machine", "user namespaces", WARN, f"cannot create one: {said}", "sysctl -w kernel.unprivileged_userns_clone=1 (Debian), or run gati as root")
    return Check("machine", "user namespaces", OK, "available")


def check_cgroups() -> Check:
    writable = [c for c in CONTROLLERS if (CGROUP_FS / c / "cgroup.procs").exists() and os.access(CGROUP_FS / c, os.W_OK)]
    if len(writable) == len(CONTROLLERS):
        return Check("machine", "cgroups", OK, f"{', '.join(writable)} writable: native modules' limits are cgroups")
    missing = ", ".join(c for c in CONTROLLERS if c not in writable)
    return Check("machine", "cgroups", WARN, f"no writable {missing} cgroup: native modules' memory and process limits fall back to rlimits", "run gati as root on a host with cgroup v1 controllers mounted under /sys/fs/cgroup")


def _rustc_with_wasm() -> str | None:
    for rustc in ("rustc", "/usr/bin/rustc"):
        if shutil.which(rustc):
            ok, sysroot = _run(rustc, "--print", "sysroot")
            if ok and (Path(sysroot) / "lib/rustlib/wasm32-unknown-unknown").is_dir():
                return rustc
    return None


def _have(*tools: str) -> list[str]:
    return [t for t in tools if shutil.which(t) is None]


# template -> (what is missing, the fix); an empty list when it can build
TOOLCHAINS: dict[str, Callable[[], tuple[list[str], str]]] = {
    "wat-wasm": lambda: ([], ""),
    "c-wasm": lambda: (
        _have("clang", "wasm-ld") + ([] if Path("/usr/include/wasm32-wasi/stdio.h").is_file() or Path("/usr/include/wasm32-wasip1/stdio.h").is_file() else ["wasi-libc"]),
        "apt-get install clang lld wasi-libc libclang-rt-dev-wasm32",
    ),
    "rust-wasm": lambda: ([] if _rustc_with_wasm() else ["rustc with wasm32-unknown-unknown"], "apt-get install rustc libstd-rust-dev-wasm32"),
    "assemblyscript-wasm": lambda: (_have("node", "npm"), "apt-get install nodejs npm (asc itself comes from npm into the module's folder)"),
    "python-oci": lambda: ([] if docker_problem() is None else ["a Docker engine"], SETUP),
    "node-oci": lambda: (_have("node", "npm") + ([] if docker_problem() is None else ["a Docker engine"]), "apt-get install nodejs npm; " + SETUP),
    "go-native": lambda: (
        _have("go", "protoc", "protoc-gen-go", "protoc-gen-go-grpc")
        + ([] if Path("/usr/share/gocode/src/google.golang.org/grpc").is_dir() else ["golang-google-grpc-dev"]),
        "apt-get install golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev protobuf-compiler protoc-gen-go protoc-gen-go-grpc",
    ),
    "python-native": lambda: (
        [] if Path("/usr/bin/python3").is_file() and _run("/usr/bin/python3", "-c", f"import sys; sys.exit(sys.version_info[:2] != {tuple(sys.version_info[:2])})")[0] else [f"/usr/bin/python3 {sys.version_info[0]}.{sys.version_info[1]} (the runtime's version)"],
        "run gati with the system's python3 (native Python modules use the runtime's grpcio)",
    ),
}


def check_toolchains() -> list[Check]:
    checks = []
    for lang, (kinds, _) in LANGUAGES.items():
        for kind in kinds:
            missing, fix = TOOLCHAINS[f"{lang}-{kind}"]()
            name = f"template {lang} ({kind})"
            if missing:
                checks.append(Check("machine", name, WARN, f"cannot build: missing {', '.join(missing)}", fix))
            else:
                checks.append(Check("machine", name, OK, "can build"))
    return checks


def check_base_images() -> list[Check]:
    if docker_problem() is not None:
        return []
    checks = []
    client = docker.from_env()
    try:
        for lang in images.BASE_PACKAGES:
            tag = images.base_tag(lang)
            try:
                client.images.get(tag)
                checks.append(Check("machine", f"base image {lang}", OK, tag))
            except docker.errors.ImageNotFound:
                checks.append(Check("machine", f"base image {lang}", WARN, f"{tag} is not built: the first {lang} container module's build takes about a minute (debootstrap)", "gati build (as root) builds it once for every project"))
    finally:
        client.close()
    return checks


# the project ---------------------------------------------------------------------------------------


def check_project(root: Path) -> list[Check]:
    if not is_project(root):
        return [Check("project", "gati.toml", WARN, f"{root} is not a gati project: its checks are skipped", "run gati doctor in a project, or --project DIR (create one with: gati init DIR)")]
    try:
        project = load_project(root)
    except GatiError as exc:
        return [Check("project", "gati.toml", FAIL, exc.message, exc.fix or "")]
    checks = [Check("project", "gati.toml", OK, str(root / CONFIG_FILE))]
    server = project.settings.server
    checks.append(_check_port(server.host, server.port))
    checks.append(_check_state(root))
    try:
        folders = project.module_dirs()
    except GatiError as exc:
        return checks + [Check("project", "modules", FAIL, exc.message, exc.fix or "")]
    for folder in folders:
        checks.append(_check_module(folder))
    if not (StateDir.locate(root) / "audit.log").exists():
        return checks + [Check("project", "audit chain", OK, "no audit log yet (the first module call starts it)")]
    with open_state(root) as state:  # with the audit key gati.toml configures, as gati audit verify
        result = verify_chain(state.audit_path, state.audit_key)
    if result.ok:
        checks.append(Check("project", "audit chain", OK, f"{result.records} records verify"))
    else:
        checks.append(Check("project", "audit chain", FAIL, f"broken at line {result.broken_line}: {result.problem}", f"gati audit verify --project {root} names it; keep the log as evidence and start a new one"))
    return checks


def _check_port(host: str, port: int) -> Check:
    name = f"port {host}:{port}"
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:
        return Check("project", name, WARN, f"cannot listen there now: {exc.strerror}", "stop what listens there, or serve with --port / set [server] port in gati.toml")
    return Check("project", name, OK, "free")


def _check_state(root: Path) -> Check:
    path = StateDir.locate(root)
    probe = path if path.exists() else path.parent
    if not os.access(probe, os.W_OK):
        return Check("project", "state directory", FAIL, f"{path} is not writable", "make it writable, or set GATI_HOME to a folder that is")
    return Check("project", "state directory", OK, f"{path}{'' if path.exists() else ' (made on first use)'}")


def _check_module(folder: Path) -> Check:
    try:
        loaded = load_manifest(folder, built=False)
    except GatiError as exc:
        return Check("project", f"module {folder.name}", FAIL, exc.message, exc.fix or "")
    name = f"module {loaded.name}"
    try:
        load_manifest(folder)
    except GatiError as exc:
        return Check("project", name, FAIL, exc.message, exc.fix or f"gati build {loaded.name}")
    if loaded.manifest.artifact.build_command and needs_build(loaded) and not up_to_date(loaded):
        return Check("project", name, WARN, "its sources changed since its last build (or it was built outside gati build)", f"gati build {loaded.name}")
    return Check("project", name, OK, f"{loaded.manifest.kind}, manifest valid, artifact in place")


def doctor(project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Check the machine and the project; print each check with its fix (exit 1 when one fails)."""
    root = Path(project).resolve()
    checks = [check_docker(), check_bwrap(), check_userns(), check_cgroups(), *check_toolchains(), *check_base_images(), *check_project(root)]
    if as_json:
        print_json([asdict(c) for c in checks])
    else:
        table = Table("", "check", "detail", "fix", box=None)
        style = {OK: "[green]ok[/]", WARN: "[yellow]warn[/]", FAIL: "[bold red]fail[/]"}
        for c in checks:
            table.add_row(style[c.status], escape(c.name), escape(c.detail), escape(c.fix))
        out.print(table)
    if any(c.status == FAIL for c in checks):
        raise typer.Exit(1)


doctor_command = user_errors(doctor)
