"""Bytes to text for report pages whose declared charset cannot be trusted.

District sites serve UTF-8 and GB2312/GBK pages, often without a charset, sometimes with a
wrong one (error pages declare iso-8859-1; Scrapy falls back to cp1252). UTF-8 is tried
first because GBK bytes almost never decode as strict UTF-8 while the reverse often
"succeeds" as mojibake; then a declared CJK codec, then GB18030 (a superset of GB2312 and
GBK), then charset-normalizer's guess.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from charset_normalizer import from_bytes

_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-]+)""", re.IGNORECASE
)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_\-]+)", re.IGNORECASE)
# Declarations that say nothing useful about a Chinese page.
_WESTERN = {"latin_1", "iso8859-1", "cp1252", "ascii", "iso8859-15"}
_CJK_SUPERSET = {"gb2312": "gb18030", "gbk": "gb18030", "hz": "gb18030"}


@dataclass(frozen=True, slots=True)
class DecodedText:
    """Text with the codec that produced it and the one the document declared."""

    text: str
    encoding: str
    declared: str | None


def _canonical(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().lower()).name
    except LookupError:
        return None


def declared_encoding(data: bytes, content_type: str | None = None) -> str | None:
    """The charset named by the HTTP Content-Type or, failing that, a <meta> tag."""
    if content_type:
        match = _HEADER_CHARSET.search(content_type)
        if match and _canonical(match.group(1)):
            return _canonical(match.group(1))
    match = _META_CHARSET.search(data[:4096])
    if match:
        return _canonical(match.group(1).decode("ascii", "ignore"))
    return None


def _decode(data: bytes, codec: str) -> str:
    if codec == "gb18030":
        # Whatever the GBK codec decodes, GB18030 decodes to the very same text (it
        # extends GBK with code points GBK lacks; every GBK byte pair means the same), and
        # CPython's GBK decoder is nearly twice as fast: most pages need nothing more.
        try:
            return data.decode("gbk")
        except UnicodeDecodeError:
            pass
    return data.decode(codec)


def decode_document(data: bytes, content_type: str | None = None) -> DecodedText:
    """Decode a report document, recording the codec used."""
    declared = declared_encoding(data, content_type)
    if data.startswith(codecs.BOM_UTF8):
        return DecodedText(data[3:].decode("utf-8", "replace"), "utf-8", declared)
    candidates = ["utf-8"]
    if declared and declared not in _WESTERN and declared != "utf-8":
        candidates.append(_CJK_SUPERSET.get(declared, declared))
    candidates.append("gb18030")
    for codec in candidates:
        try:
            return DecodedText(_decode(data, codec), codec, declared)
        except (UnicodeDecodeError, LookupError):
            continue
    guess = from_bytes(data[:200_000]).best()
    if guess is not None:
        return DecodedText(
            data.decode(guess.encoding, "replace"), guess.encoding, declared
        )
    return DecodedText(data.decode("utf-8", "replace"), "utf-8", declared)
