"""Word documents (DOCX; DOC and WPS through LibreOffice) to a ``Layout``."""
