"""The reuse key: a digest of everything that can change a Report, so reuse never goes stale.

An archived document is extracted again when its bytes change or when anything that reads
them changes: the extractor's own source files, the label catalogue, the versions of the
parsing libraries, and the external converters (Tesseract, LibreOffice) that its kind of
document needs, including whether they are installed at all.
"""

from __future__ import annotations

import hashlib
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


@cache
def converter_version(name: str) -> str:
    """One external converter's version, 'absent' where it is not installed."""
    if name == "tesseract":
        if not shutil.which("tesseract"):
            return "absent"
        version = (_output(["tesseract", "--version"]) or "unknown").splitlines()[0]
        languages = _output(["tesseract", "--list-langs"]).splitlines()
        return f"{version}; chi_sim {'chi_sim' in languages}"
    if name == "libreoffice":
        soffice = shutil.which("soffice") or shutil.which("libreoffice")
        if not soffice:
            return "absent"
        return (_output([soffice, "--version"]) or "unknown").splitlines()[0]
    raise KeyError(name)


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
