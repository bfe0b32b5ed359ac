"""Images for container modules, built locally: no image registry is reachable here.

Three layers, each tagged by a digest of what it is made from, so a second build of
an unchanged recipe finds its tag and does nothing:

    gati-base/<lang>:<digest>   debootstrap --variant=minbase of Debian with python3
                                or nodejs, imported with `docker import`
    gati/python:<digest>        the python base plus grpcio and protobuf (wheels fetched
                                on the host with `pip download`, unpacked offline) and
                                the gati SDK, byte-compiled
    gati/node:<digest>          the node base (a module brings its own node_modules)

A module's Dockerfile starts `ARG GATI_PYTHON` / `FROM ${GATI_PYTHON}` (or GATI_NODE);
registration builds only the bases its Dockerfile names and pins the module by image
ID, which the sandbox checks again before it runs anything (check_image).
"""

from __future__ import annotations

import compileall
import contextlib
import fcntl
import glob
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import docker
import docker.errors

from runtime.core.errors import GatiError, IntegrityError, ModuleNotFound
from runtime.core.manifest import LoadedManifest

log = logging.getLogger("gati.oci")

SDK_DIR = Path(__file__).resolve().parents[2] / "sdk" / "python" / "gati_sdk"
SUITE = "bookworm"
PYTHON_VERSION = "3.11"  # bookworm's python3: the wheels are fetched for this ABI
# Debian's minbase still carries documentation and apt's caches: not needed to run a module.
STRIP = ["var/cache/apt/archives/*.deb", "var/lib/apt/lists/*", "usr/share/doc/*", "usr/share/man/*", "usr/share/info/*", "usr/share/locale/*"]
BASE_PACKAGES = {"python": ["python3"], "node": ["nodejs"]}
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
WHEEL_PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_5_x86_64"]
BUILD_ARGS = {"GATI_PYTHON": "python", "GATI_NODE": "node"}


class ImageError(GatiError):
    code = "image_build_failed"
    http_status = 500


def cache_dir() -> Path:
    """Machine-wide: the bases and wheels serve every project, as the engine's images do."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gati" / "oci"
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def _build_lock():
    # Two runtimes (or a test run and a CLI) registering at once must not debootstrap twice.
    with open(cache_dir() / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _client() -> docker.DockerClient:
    try:
        return docker.from_env()
    except docker.errors.DockerException as exc:
        raise ImageError(
            f"container modules need a Docker engine and none is reachable: {exc}",
            fix="run `make setup` (installs docker.io and starts dockerd), or start dockerd yourself",
        ) from None


def _exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


# -- layer 1: Debian from its own mirror ------------------------------------------------

def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses for the base suite (never a guessed host)."""
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for stanza in Path(path).read_text().split("\n\n"):
            fields = dict(
                (k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in stanza.splitlines() if not line.startswith("#"))
            )
            if SUITE in fields.get("Suites", "").split() and "deb" in fields.get("Types", "").split():
                return fields["URIs"].split()[0]
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        for line in Path(path).read_text().splitlines() if os.path.exists(path) else []:
            words = [w for w in line.split() if not w.startswith("[")]
            if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
                return words[1]
    raise ImageError(
        f"no Debian {SUITE} mirror is configured in /etc/apt/sources.list(.d)",
        fix=f"add a deb source for {SUITE}, or give modules an image already in the engine ([artifact] image = ...)",
    )


def base_tag(lang: str) -> str:
    """The tag of a language's base image: a digest of its recipe."""
    return f"gati-base/{lang}:{_digest('debootstrap', SUITE, 'minbase', BASE_PACKAGES[lang], STRIP)}"


def base_image(client: docker.DockerClient, lang: str) -> str:
    tag = base_tag(lang)
    packages = BASE_PACKAGES[lang]
    if _exists(client, tag):
        return tag
    with _build_lock():
        if _exists(client, tag):
            return tag
        if shutil.which("debootstrap") is None or os.geteuid() != 0:
            raise ImageError(
                f"cannot build the {lang} base image: debootstrap needs root and the debootstrap package",
                fix="run `make setup` as root once (it builds the base images), or use [artifact] image = ...",
            )
        mirror = debian_mirror()
        log.warning("building %s from %s (debootstrap, once per recipe: about a minute)", tag, mirror)
        with tempfile.TemporaryDirectory(prefix="gati-debootstrap-") as tmp:
            root = Path(tmp) / "rootfs"
            _run(["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", SUITE, str(root), mirror], "debootstrap")
            for pattern in STRIP:
                for path in glob.glob(str(root / pattern)):
                    shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
            tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
            # `docker import` streams the tar; the SDK would hold the whole file system in memory.
            _run(["docker", "import", "--change", f"ENV {PATH_ENV}", "-", tag], "docker import", stdin=tar.stdout)
            tar.stdout.close()
            if tar.wait() != 0:
                raise ImageError(f"tar of the {lang} root file system failed")
    return tag


def _run(cmd: list[str], what: str, stdin=None) -> None:
    # Line by line to the gati.oci log: a debootstrap is a minute of steps, not a minute of silence.
    tail: list[str] = []
    with subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace") as proc:
        for line in proc.stdout:
            line = line.rstrip()
            tail = (tail + [line])[-20:]
            log.info("%s: %s", what.split()[0], line)
    if proc.returncode != 0:
        raise ImageError(f"{what} failed (exit {proc.returncode}): {chr(10).join(tail)[-800:]}", fix="see the output above; the mirror must be reachable")


# -- layer 2: what modules of a language need from gati ---------------------------------

def _sdk_files() -> list[tuple[str, bytes]]:
    files = sorted(p for p in SDK_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".pyi"))
    return [(str(p.relative_to(SDK_DIR.parent)), p.read_bytes()) for p in files]


def _wheel_pins() -> list[str]:
    # The SDK's generated code needs the grpcio/protobuf it was generated against: use the host's.
    return [f"{name}=={importlib.metadata.version(name)}" for name in ("grpcio", "protobuf")]


def wheels(pins: list[str]) -> list[Path]:
    """grpcio and protobuf (and their dependencies) for the image's Python, fetched on the host."""
    target = cache_dir() / "wheels" / _digest(pins, PYTHON_VERSION, WHEEL_PLATFORMS)
    if not (target / "done").exists():
        target.mkdir(parents=True, exist_ok=True)
        platforms = [arg for p in WHEEL_PLATFORMS for arg in ("--platform", p)]
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--only-binary=:all:", *platforms,
               "--python-version", PYTHON_VERSION, "--implementation", "cp", "-d", str(target), *pins]
        _run(cmd, "pip download of the module wheels")
        (target / "done").touch()
    return sorted(target.glob("*.whl"))


def sdk_image(client: docker.DockerClient, lang: str) -> str:
    base = base_image(client, lang)
    if lang == "node":
        return base  # nothing of gati's goes in: node modules bring @grpc/grpc-js themselves
    pins = _wheel_pins()
    sdk = _sdk_files()
    tag = f"gati/python:{_digest(base, pins, [(n, hashlib.sha256(b).hexdigest()) for n, b in sdk])}"
    if _exists(client, tag):
        return tag
    with _build_lock(), tempfile.TemporaryDirectory(prefix="gati-sdk-") as tmp:
        site = Path(tmp) / "site"
        for wheel in wheels(pins):
            # A wheel of plain purelib/platlib files is installed by unpacking it: no pip in the image.
            with zipfile.ZipFile(wheel) as whl:
                whl.extractall(site)
        for name, data in sdk:
            (site / name).parent.mkdir(parents=True, exist_ok=True)
            (site / name).write_bytes(data)
        # The root file system is read-only at run time: compile now, or every start pays for it.
        compileall.compile_dir(str(site), quiet=2, invalidation_mode=compileall.py_compile.PycInvalidationMode.UNCHECKED_HASH)
        (Path(tmp) / "Dockerfile").write_text(
            f"FROM {base}\nCOPY site /usr/local/lib/python{PYTHON_VERSION}/dist-packages/\n"
            "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1\n"
        )
        _build(client, tmp, tag, {})
    return tag


def _build(client: docker.DockerClient, context: str, tag: str, buildargs: dict[str, str]) -> str:
    # The low-level API streams the build's steps (to the gati.oci log); images.build only returns at the end.
    tail: list[str] = []
    built = None
    try:
        # network none: nothing is reachable anyway, and a RUN that tries fails at once instead of hanging.
        for chunk in client.api.build(path=context, tag=tag, buildargs=buildargs, rm=True, forcerm=True, network_mode="none", decode=True):
            text = str(chunk.get("stream") or "").strip()
            if text:
                tail = (tail + [text])[-20:]
                log.info("docker build %s: %s", tag, text)
                found = re.match(r"Successfully built ([0-9a-f]+)$", text)
                built = found.group(1) if found else built
            if isinstance(chunk.get("aux"), dict) and chunk["aux"].get("ID"):
                built = chunk["aux"]["ID"]
            if "error" in chunk:
                detail = "\n".join(tail)[-1200:]
                raise ImageError(f"docker build of {tag} failed: {chunk['error']}\n{detail}", fix="fix the Dockerfile; only local images can be used")
        if built is None:
            raise ImageError(f"docker build of {tag} named no image", fix="see the build output above")
        # The ID this build made, never the tag's: another build may retag it meanwhile.
        return client.images.get(built).id
    except docker.errors.APIError as exc:
        raise ImageError(f"docker build of {tag} failed: {exc.explanation}") from None


# -- layer 3: the module ---------------------------------------------------------------

def register_image(loaded: LoadedManifest, client: docker.DockerClient | None = None) -> str:
    """Build the module's image if it has a build context; the image ID to record either way."""
    if client is None:
        with contextlib.closing(_client()) as client:
            return register_image(loaded, client)
    artifact = loaded.manifest.artifact
    if artifact.build:
        context = loaded.build_context()  # inside the module's folder, or it raises
        dockerfile = (context / "Dockerfile").resolve()
        if not dockerfile.is_relative_to(context) or not dockerfile.is_file():
            raise ImageError(f"no Dockerfile in {context}", fix="add a Dockerfile (a file, not a link out of the folder) to the build context named by [artifact] build")
        text = dockerfile.read_text()
        args = {arg: sdk_image(client, lang) for arg, lang in BUILD_ARGS.items() if re.search(rf"\b{arg}\b", text)}
        return _build(client, str(context), module_tag(loaded), args)
    try:
        return client.images.get(artifact.image).id
    except docker.errors.ImageNotFound:
        raise ModuleNotFound(
            f"image {artifact.image!r} of module {loaded.name} is not in the local engine (no registry is reachable)",
            fix="build or load it first (docker build / docker load), or use [artifact] build = \"DIR\"",
            module=loaded.name,
        ) from None


def module_tag(loaded: LoadedManifest) -> str:
    return f"gati-module/{loaded.manifest.name}:{loaded.manifest.version}"


def built_image_id(loaded: LoadedManifest) -> str | None:
    """The ID of the image a build context last built for this module, if the engine has it (gati build's up-to-date check)."""
    try:
        with contextlib.closing(_client()) as client:
            return client.images.get(loaded.manifest.artifact.image or module_tag(loaded)).id
    except docker.errors.ImageNotFound:
        return None


def check_image(client: docker.DockerClient, loaded: LoadedManifest, recorded: str) -> str:
    """The recorded image ID, once sure it is still what registration pinned."""
    artifact = loaded.manifest.artifact
    register = f"gati module register {loaded.base_dir}"
    if artifact.image:
        try:
            current = client.images.get(artifact.image).id
        except docker.errors.ImageNotFound:
            current = None
        if current != recorded:
            raise IntegrityError(
                f"image {artifact.image!r} of {loaded.name} is now {current and current[:19]}, registered {recorded[:19]}",
                fix=f"if the change is intended, run: {register}",
                module=loaded.name,
            )
    elif not _exists(client, recorded):
        raise ModuleNotFound(f"image {recorded[:19]} of {loaded.name} is gone from the engine", fix=f"rebuild it: {register}", module=loaded.name)
    return recorded
