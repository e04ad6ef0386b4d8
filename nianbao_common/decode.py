"""Bytes to text for report pages whose declared charset cannot be trusted.

District sites serve UTF-8 and GB2312/GBK pages, often without a charset, sometimes with a
wrong one (error pages declare iso-8859-1; Scrapy falls back to cp1252). UTF-8 is tried
first because GBK bytes almost never decode as strict UTF-8 while the reverse often
"succeeds" as mojibake; then a declared CJK codec, then GB18030 (a superset of GB2312 and
GBK), then charset-normalizer's guess.

Damaged pages keep their encoding. A download cut off inside its last character still
decodes, that character replaced by U+FFFD. A UTF-8 or GBK page with a few stray bytes
(pasted from another encoding) is still read as such, each bad byte replaced: the
next codec, or charset-normalizer's guess, would make it mojibake from end to end.
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
# The encodings browsers know (the WHATWG Encoding Standard) that Python has. A page that
# declares anything else, though Python may know the name (charset="undefined", which
# fails on every byte; base64, unicode_escape, cp037), is read as undeclared, as browsers
# read it.
_BROWSER_CODECS = frozenset(
    codecs.lookup(name).name
    for name in (
        "utf-8", "utf-16", "utf-16-be", "utf-16-le", "gb2312", "gbk", "gb18030", "hz",
        "big5", "big5hkscs", "euc_jp", "iso2022_jp", "shift_jis", "euc_kr", "ascii",
        "iso8859-1", "iso8859-2", "iso8859-3", "iso8859-4", "iso8859-5", "iso8859-6",
        "iso8859-7", "iso8859-8", "iso8859-10", "iso8859-13", "iso8859-14",
        "iso8859-15", "iso8859-16", "cp866", "koi8-r", "koi8-u", "mac-roman", "cp874",
        "cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1255", "cp1256",
        "cp1257", "cp1258",
    )
)  # fmt: skip


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
        codec = codecs.lookup(name.strip().lower()).name
    except LookupError:
        return None
    return codec if codec in _BROWSER_CODECS else None


def declared_encoding(data: bytes, content_type: str | None = None) -> str | None:
    """The charset named by the HTTP Content-Type or, failing that, a <meta> tag."""
    if content_type:
        header = _HEADER_CHARSET.search(content_type)
        if header and _canonical(header.group(1)):
            return _canonical(header.group(1))
    meta = _META_CHARSET.search(data[:4096])
    if meta:
        return _canonical(meta.group(1).decode("ascii", "ignore"))
    return None


def _strict(data: bytes, codec: str) -> str:
    if codec == "gb18030":
        # Whatever the GBK codec decodes, GB18030 decodes to the very same text (it
        # extends GBK with code points GBK lacks; every GBK byte pair means the same), and
        # CPython's GBK decoder is nearly twice as fast: most pages need nothing more.
        try:
            return data.decode("gbk")
        except UnicodeDecodeError:
            pass
    return data.decode(codec)


# What the codecs say of bytes that stop inside a character.
_CUT_OFF = {"unexpected end of data", "incomplete multibyte sequence"}


def _decode(data: bytes, codec: str) -> str:
    try:
        return _strict(data, codec)
    except UnicodeDecodeError as error:
        if error.end == len(data) and error.reason in _CUT_OFF:
            # A download cut off inside its last character.
            return _strict(data[: error.start], codec) + "\ufffd"
        raise


# A strict UTF-8 decode that fails after this many Chinese characters has met a stray
# byte in a UTF-8 page: GBK text fails within its first few characters (four in five
# GBK byte pairs are invalid UTF-8), and so, in practice, within the <title>.
_UTF8_EVIDENCE = 32
# At most this share of a page's Chinese characters may be replaced.
_MAX_REPLACED = 0.01


def _few_replaced(data: bytes, codec: str) -> str | None:
    """The text with its bad bytes replaced, or None if too many are: a wrong codec."""
    text = data.decode(codec, "replace")
    # Each Chinese character adds two bytes in UTF-8, one in GB18030.
    characters = (len(data) - len(text)) / (2 if codec == "utf-8" else 1)
    if text.count("\ufffd") > max(1.0, _MAX_REPLACED * characters):
        return None
    return text


def _damaged_utf8(data: bytes, error: UnicodeDecodeError) -> str | None:
    """The text of a UTF-8 page with a few bad bytes, or None if it is not UTF-8."""
    valid = data[: error.start]
    if len(valid) - len(valid.decode("utf-8")) < 2 * _UTF8_EVIDENCE:
        return None
    return _few_replaced(data, "utf-8")


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
        except UnicodeDecodeError as error:
            if codec == "utf-8" and (text := _damaged_utf8(data, error)) is not None:
                return DecodedText(text, "utf-8", declared)
    # No codec reads every byte. Report sites are Chinese: a GBK page with a few stray
    # bytes is far likelier than any codec a statistical guess comes up with.
    text = _few_replaced(data, "gb18030")
    if text is not None:
        return DecodedText(text, "gb18030", declared)
    guess = from_bytes(data[:200_000]).best()
    if guess is not None:
        return DecodedText(
            data.decode(guess.encoding, "replace"), guess.encoding, declared
        )
    return DecodedText(data.decode("utf-8", "replace"), "utf-8", declared)
