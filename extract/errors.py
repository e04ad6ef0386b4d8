"""What every document reader raises and how a library's failure becomes a reason.

``DocumentError`` is a document that cannot be read at all (its message says why);
``raised_by_library`` tells a library's failure on a damaged file from a bug of this
package, and ``describe`` names it for a problem. They live here, below the readers
(``pdf``, ``office``, ``ocr``, ``formats``), so that each can import them.
"""

from __future__ import annotations


class DocumentError(Exception):
    """A document that cannot be read at all; the message says why."""


class OcrTimeoutError(DocumentError):
    """Tesseract did not finish a page within its time."""


class OcrGarbageError(DocumentError):
    """A page OCR reads as garbage (speckled like noise, or words Tesseract itself
    trusts too little): refused rather than given as a reading."""


def raised_by_library(error: BaseException) -> bool:
    """Whether an exception comes from inside a library (a document it could not read),
    not from this package's own code, whose errors are bugs to be seen, not problems.

    Libraries reading damaged files raise anything (zlib.error, KeyError, TypeError,
    NotImplementedError, RecursionError): where it was raised tells them apart.
    """
    frame = error.__traceback__
    if frame is None:
        return False
    while frame.tb_next is not None:
        frame = frame.tb_next
    module = frame.tb_frame.f_globals.get("__name__", "")
    return not (module == "extract" or module.startswith("extract."))


def describe(error: BaseException) -> str:
    """The exception's type and a short message, for a problem.

    >>> describe(KeyError("Root"))
    "KeyError: 'Root'"
    """
    name = type(error).__name__
    # A library that wraps another's error in its own: name both.
    if error.args and isinstance(error.args[0], BaseException):
        name += f" ({type(error.args[0]).__name__})"
    lines = str(error).strip().splitlines()
    message = lines[0] if lines else ""
    if len(message) > 160:
        message = message[:157] + "..."
    return f"{name}: {message}" if message else name
