"""Real Debian images for tests and benchmarks: mmdebstrap minbase bookworm root filesystems.

Built the way ``../shared/lab/setup.sh`` builds its lab (merged /usr, docs, man pages and
locales left out by dpkg path excludes, device nodes skipped): amd64 natively
(``--mode=root``, the maintainer scripts run in a chroot), arm64 without an emulator
(``--mode=chrootless`` under fakeroot as an unprivileged user: dpkg installs the real arm64
packages and writes a real status file, maintainer scripts of foreign binaries cannot run).
``SOURCE_DATE_EPOCH`` fixes every mtime, so a rebuild from the same archive gives the same
bytes; the Debian archive moves, so digests change when bookworm gets an update.

A build takes 20–40 s and downloads ~25 MB of packages from the Debian mirror (as apt-get
does), so the tar is cached in ``$REGSWEEP_TEST_CACHE`` (default ``~/.cache/regsweep-tests``)
and reused by later runs; gzip layers made from it are cached beside it.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import os
import pwd
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

SUITE = "bookworm"
#: 2024-05-20, as the lab: every mtime in the rootfs and the layers.
SOURCE_DATE_EPOCH = "1716163200"
SOURCES = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
DPKG_SLIM = """\
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
"""
#: dpkg path excludes are not honoured in chrootless mode: the same cleanup as a hook.
_CHROOTLESS_SLIM = (
    'cd "$1" && find usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias '
    "-exec rm -rf {} + ; find usr/share/doc -mindepth 2 ! -name copyright ! -type d -delete; "
    "rm -rf usr/share/man/* usr/share/info/* usr/share/lintian/*"
)
_BUILD_USER = "regsweep-build"
_MERGED_USR = "/usr/share/mmdebstrap/hooks/merged-usr"
#: Part of the cache key: change it when the build options change.
_RECIPE = "2"


class CannotBuild(Exception):
    """This machine cannot build the root filesystem (the reason is the message)."""


def cache_dir() -> Path:
    """Where built root filesystems and layers are kept between runs."""
    env = os.environ.get("REGSWEEP_TEST_CACHE")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "regsweep-tests"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder at a time (two test sessions may start together)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def debian_rootfs(arch: str = "amd64") -> Path:
    """A minbase bookworm root filesystem tar for ``arch`` (``amd64`` or ``arm64``), built
    once and cached; ``CannotBuild`` when this machine cannot build it."""
    if arch not in ("amd64", "arm64"):
        raise ValueError(f"no recipe for {arch}")
    out = cache_dir() / f"rootfs-{SUITE}-{arch}-r{_RECIPE}.tar"
    if out.is_file() and out.stat().st_size:
        return out
    if shutil.which("mmdebstrap") is None:
        raise CannotBuild("mmdebstrap is not installed (apt-get install mmdebstrap)")
    if os.geteuid() != 0:
        raise CannotBuild("building a Debian root filesystem needs root (mmdebstrap --mode=root)")
    with _locked(out.with_suffix(".lock")):
        if out.is_file() and out.stat().st_size:
            return out
        if arch == "amd64" and os.uname().machine == "x86_64":
            _build_native(out)
        else:
            _build_chrootless(out, arch)
    return out


def _mmdebstrap(*args: str, env: dict[str, str], log: Path) -> None:
    with log.open("wb") as fh:
        proc = subprocess.run(
            ["mmdebstrap", *args], env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=900
        )
    if proc.returncode:
        tail = log.read_text(errors="replace")[-3000:]
        raise CannotBuild(f"mmdebstrap failed ({proc.returncode}): {tail}")


def _build_native(out: Path) -> None:
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        slim = Path(tmp) / "dpkg-slim.cfg"
        slim.write_text(DPKG_SLIM)
        part = Path(tmp) / out.name
        env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
        _mmdebstrap(
            "--mode=root", "--variant=minbase", "--format=tar", "--skip=output/dev",
            f"--hook-dir={_MERGED_USR}", f"--dpkgopt={slim}",
            '--aptopt=Acquire::Languages "none"', SUITE, str(part), *SOURCES,
            env=env, log=out.with_suffix(".log"),
        )  # fmt: skip
        part.replace(out)


def _build_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(_BUILD_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--create-home", "--home-dir", f"/var/lib/{_BUILD_USER}",
             "--shell", "/usr/sbin/nologin", _BUILD_USER],
            check=True,
        )  # fmt: skip
        return pwd.getpwnam(_BUILD_USER)


def _build_chrootless(out: Path, arch: str) -> None:
    if shutil.which("fakeroot") is None:
        raise CannotBuild("fakeroot is not installed (apt-get install fakeroot)")
    user = _build_user()
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir="/var/tmp"))
    try:
        os.chmod(work, 0o755)
        slim = work / "dpkg-slim.cfg"
        slim.write_text(DPKG_SLIM)
        part = work / out.name
        os.chown(work, user.pw_uid, user.pw_gid)
        os.chown(slim, user.pw_uid, user.pw_gid)
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH,
            "HOME": user.pw_dir,
            "TMPDIR": str(work),
        }
        log = out.with_suffix(".log")
        with log.open("wb") as fh:
            proc = subprocess.run(
                ["runuser", "-u", _BUILD_USER, "--", "fakeroot", "mmdebstrap",
                 "--mode=chrootless", "--variant=minbase", f"--arch={arch}", "--format=tar",
                 "--skip=output/dev", f"--hook-dir={_MERGED_USR}", f"--dpkgopt={slim}",
                 '--aptopt=Acquire::Languages "none"', f"--customize-hook={_CHROOTLESS_SLIM}",
                 SUITE, str(part), *SOURCES],
                env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=900,
            )  # fmt: skip
        if proc.returncode:
            tail = log.read_text(errors="replace")[-3000:]
            raise CannotBuild(f"mmdebstrap failed ({proc.returncode}): {tail}")
        shutil.move(part, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def gzip_layer(tar: Path) -> tuple[Path, str, str]:
    """The tar as a gzip layer blob (level 6, no name or mtime: what registries serve),
    cached beside it: (blob path, blob digest, diff_id)."""
    blob = tar.with_suffix(".tar.gz")
    sums = tar.with_suffix(".sums")
    with _locked(tar.with_suffix(".gzlock")):
        if not (blob.is_file() and sums.is_file()):
            diff = hashlib.sha256()
            comp = hashlib.sha256()
            part = blob.with_suffix(".part")
            with (
                tar.open("rb") as src,
                part.open("wb") as raw,
                gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz,
            ):
                while chunk := src.read(1 << 20):
                    diff.update(chunk)
                    gz.write(chunk)
            with part.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    comp.update(chunk)
            part.replace(blob)
            sums.write_text(f"sha256:{comp.hexdigest()} sha256:{diff.hexdigest()}\n")
    digest, diff_id = sums.read_text().split()
    return blob, digest, diff_id


def tar_layer(files: dict[str, bytes | str], *, whiteouts: tuple[str, ...] = ()) -> bytes:
    """A small layer tar: ``files`` (bytes: a file; str: a symlink target), ``whiteouts``
    (paths deleted in lower layers), deterministic headers."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        entries: list[tuple[str, bytes | str]] = list(files.items())
        entries += [(_whiteout(p), b"") for p in whiteouts]
        for name, payload in sorted(entries):
            info = tarfile.TarInfo("./" + name)
            info.mtime = int(SOURCE_DATE_EPOCH)
            if isinstance(payload, str):
                info.type, info.linkname = tarfile.SYMTYPE, payload
                tar.addfile(info)
                continue
            info.size = len(payload)
            info.mode = 0o755 if "/bin/" in name else 0o644
            tar.addfile(info, io.BytesIO(payload))
    return out.getvalue()


def _whiteout(path: str) -> str:
    head, _, base = path.rpartition("/")
    return f"{head}/.wh.{base}" if head else f".wh.{base}"


def dpkg_installed(tar: Path) -> list[tuple[str, str, str, str]]:
    """``(package, version, source, source version)`` of every installed package of a
    root filesystem tar, as dpkg itself reports them (``dpkg-query --admindir``): the
    oracle for the dpkg analyzer on a real image."""
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(tar) as tf:
        member = tf.getmember("./var/lib/dpkg/status")
        admin = Path(tmp) / "dpkg"
        (admin / "info").mkdir(parents=True)
        (admin / "updates").mkdir()
        fh = tf.extractfile(member)
        assert fh is not None
        (admin / "status").write_bytes(fh.read())
        query = subprocess.run(
            ["dpkg-query", f"--admindir={admin}", "-W", "-f",
             "${db:Status-Status}\\t${Package}\\t${Version}\\t${source:Package}\\t"
             "${source:Version}\\n"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    rows = [line.split("\t") for line in query.stdout.splitlines()]
    return sorted((p, v, sp, sv) for status, p, v, sp, sv in rows if status == "installed")
