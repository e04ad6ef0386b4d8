"""The reuse key: a digest of everything that can change a Report, so reuse never goes stale.

An archived document is extracted again when its bytes change or when anything that reads
them changes: the extractor's own source files, the label catalogue, the versions of the
parsing libraries, and the external converters (Tesseract, LibreOffice) that its kind of
document needs, including whether they are installed at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import nianbao_common

# The sources that make a Report: the extract package and the shared package it reads
# pages and titles with.
_SOURCES = (Path(__file__).parents[1], Path(nianbao_common.__file__).parent)
# Modules that never change a Report or its dataset rows: the readers of the dataset, its
# planning, storage and orchestration on this machine or a cluster (rows.py, which builds
# the rows, is in the key), and the shared package's data location, storage and limits.
# Everything else, present or future, is in the key.
_NOT_IN_KEY = {
    "extract/__init__.py",
    "extract/loader.py",
    "extract/export.py",
    "extract/coverage.py",
    "extract/dataset/__init__.py",
    "extract/dataset/plan.py",
    "extract/dataset/store.py",
    "extract/dataset/build.py",
    "extract/dataset/pool.py",
    "extract/dataset/guarded.py",
    "extract/dataset/staging.py",
    "extract/dataset/changes.py",
    "extract/dataset/state.py",
    "extract/dataset/cluster.py",
    "nianbao_common/paths.py",
    "nianbao_common/limits.py",
    "nianbao_common/storage.py",
}
# Distributions whose code reads the documents or shapes the rows.
_LIBRARIES = (
    "charset-normalizer",
    "lxml",
    "numpy",
    "pandas",
    "pdfminer.six",
    "pillow",
    "pyarrow",
    "pypdfium2",
    "pypinyin",
    "selectolax",
)
# Which converter each sniffed kind of document may call: a PDF falls back to OCR for
# scanned pages and fonts without a Unicode map.
CONVERTERS_OF_KIND = {
    "pdf": ("tesseract",),
    "image": ("tesseract",),
    "ole": ("libreoffice",),
}
CONVERTERS = ("tesseract", "libreoffice")


@cache
def code_digest() -> str:
    """SHA-256 (16 hex) over the extractor's sources, labels and parsing libraries."""
    digest = hashlib.sha256()
    for root in _SOURCES:
        for path in sorted(root.rglob("*")):
            relative = f"{root.name}/{path.relative_to(root).as_posix()}"
            if "__pycache__" in relative or not path.is_file():
                continue
            if path.suffix not in {".py", ".csv"} or relative in _NOT_IN_KEY:
                continue
            digest.update(f"{relative}\0".encode() + path.read_bytes() + b"\0")
    for name in _LIBRARIES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{name}=={version}\0".encode())
    digest.update(f"python {sys.version_info[:2]}\0".encode())
    return digest.hexdigest()[:16]


def _output(command: list[str]) -> str:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return (done.stdout or done.stderr).strip()


def _cache_file() -> Path | None:
    """Where converter versions are remembered between runs (the XDG cache directory);
    None for a user without a home directory, who probes every run."""
    try:
        root = os.environ.get("XDG_CACHE_HOME") or Path("~/.cache").expanduser()
    except RuntimeError:  # no home directory to expand ~ to
        return None
    return Path(root) / "nianbao" / "converters.json"


def _stamp(*paths: str) -> list[list[int | str]]:
    """What changes when a file is installed again: its path, inode, size and mtime.

    A package upgrade replaces the file (a new inode and mtime); a path that is gone
    stamps as missing, so a cached version never outlives its converter.
    """
    stamps: list[list[int | str]] = []
    for path in paths:
        try:
            found = Path(path).stat()
        except OSError:
            stamps.append([path, "missing"])
            continue
        stamps.append([path, found.st_ino, found.st_size, found.st_mtime_ns])
    return stamps


def _probe_tesseract(binary: str) -> tuple[str, list[str]]:
    version = (_output([binary, "--version"]) or "unknown").splitlines()[0]
    listing = _output([binary, "--list-langs"]).splitlines()
    # 'List of available languages in "/usr/share/tesseract-ocr/5/tessdata/" (3):'
    # names the folder whose traineddata files are the languages: its stamp changes
    # when a language is installed or removed.
    folder = listing[0].split('"')[1] if listing and listing[0].count('"') >= 2 else ""
    return f"{version}; chi_sim {'chi_sim' in listing[1:]}", [folder] if folder else []


def _probe_libreoffice(binary: str) -> tuple[str, list[str]]:
    version = (_output([binary, "--version"]) or "unknown").splitlines()[0]
    # soffice is a launcher script that an upgrade may leave byte-identical; versionrc
    # beside it carries the build id.
    return version, [str(Path(binary).with_name("versionrc"))]


_PROBES = {
    "tesseract": (("tesseract",), _probe_tesseract),
    "libreoffice": (("soffice", "libreoffice"), _probe_libreoffice),
}


@cache
def converter_version(name: str) -> str:
    """One external converter's version, 'absent' where it is not installed.

    Asking costs a process start (``soffice --version`` takes 0.13 s, more than
    extracting the demo's reports), so a version is remembered in the user's cache
    directory against the stamps of the binary and of the files that carry its
    version or languages, and asked again when any of them changes.
    """
    commands, probe = _PROBES[name]
    found = next(filter(None, map(shutil.which, commands)), None)
    if found is None:
        return "absent"
    binary = os.path.realpath(found)
    # Tesseract looks for its languages where TESSDATA_PREFIX says, if it is set.
    setting = os.environ.get("TESSDATA_PREFIX", "")
    cache_file = _cache_file()
    try:
        cached = (
            json.loads(cache_file.read_text(encoding="utf-8")) if cache_file else {}
        )
    except (OSError, ValueError):
        cached = {}
    entry = cached.get(name) if isinstance(cached, dict) else None
    if (
        isinstance(entry, dict)
        and entry.get("binary") == _stamp(binary)
        and entry.get("depends") == _stamp(*entry.get("paths", []))
        and entry.get("TESSDATA_PREFIX") == setting
        and isinstance(entry.get("version"), str)
    ):
        return entry["version"]
    version, paths = probe(binary)
    cached = cached if isinstance(cached, dict) else {}
    cached[name] = {
        "binary": _stamp(binary),
        "paths": paths,
        "depends": _stamp(*paths),
        "TESSDATA_PREFIX": setting,
        "version": version,
    }
    if cache_file is None:
        return version
    # A cache that cannot be written (read-only home) costs only the next run's probe.
    with contextlib.suppress(OSError):
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_name(f"{cache_file.name}.{os.getpid()}")
        partial.write_text(json.dumps(cached, ensure_ascii=False), encoding="utf-8")
        partial.replace(cache_file)
    return version


class InstalledConverters(Mapping[str, str]):
    """The external converters' versions, each asked for when first looked up: a run
    whose documents need no LibreOffice does not wait the 0.1 s ``soffice --version``
    takes."""

    def __getitem__(self, name: str) -> str:
        if name not in CONVERTERS:
            raise KeyError(name)
        return converter_version(name)

    def __iter__(self) -> Iterator[str]:
        return iter(CONVERTERS)

    def __len__(self) -> int:
        return len(CONVERTERS)


def converter_versions() -> Mapping[str, str]:
    """Each external converter's version, 'absent' where it is not installed."""
    return InstalledConverters()


@dataclass(frozen=True)
class ReuseKey:
    """What a document's extraction depended on: the code, and the converters it may call."""

    code: str
    converters: tuple[tuple[str, str], ...] = ()

    @property
    def text(self) -> str:
        """The key as one string, for the dataset's ``extractor_version`` column."""
        parts = [self.code, *(f"{name} {version}" for name, version in self.converters)]
        return "; ".join(parts)


def reuse_key(kinds: set[str]) -> ReuseKey:
    """The key of a document whose page and attachments are of these sniffed kinds."""
    names = sorted({c for kind in kinds for c in CONVERTERS_OF_KIND.get(kind, ())})
    versions = converter_versions()
    return ReuseKey(code_digest(), tuple((name, versions[name]) for name in names))


@cache
def package_version() -> str:
    """The installed nianbao version (the one place it is kept is pyproject.toml)."""
    return metadata.version("nianbao")
