"""What a person reads on a rendered page, and the check that it speaks the business:
no raw JSON, no Python dict text, no ISO timestamps, no amounts in cents. Attributes
(a <time>'s machine-readable `datetime`, hx-get URLs) and scripts are not read: only the
text a person sees.

The History JSON download and the raw-events view are the places JSON belongs; they are
separate pages, never scanned with this."""

from __future__ import annotations

import html
import re

_HIDDEN = re.compile(r"<(script|style|template)\b[^>]*>.*?</\1>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
RAW_PATTERNS = {
    "JSON object": re.compile(r'\{\s*"'),
    "JSON list of objects": re.compile(r"\[\s*\{"),
    "Python dict text": re.compile(r"\{\s*'"),
    "ISO timestamp": ISO_TIME,
    "an amount in cents": re.compile(r"\bcents\b|_cents\b", re.I),
}


def visible_text(page_html: str) -> str:
    """The page's text with tags, scripts and styles removed and entities decoded."""
    text = _HIDDEN.sub(" ", page_html)
    text = _TAG.sub(" ", text)
    return " ".join(html.unescape(text).split())


def raw_values(page_html: str) -> list[str]:
    """What on the page is not in people's words: "<kind>: …context…" for each finding."""
    text = visible_text(page_html)
    found = []
    for kind, pattern in RAW_PATTERNS.items():
        for m in pattern.finditer(text):
            found.append(f"{kind}: …{text[max(m.start() - 60, 0) : m.end() + 60]}…")
    return found


def assert_speaks_business(page_html: str, where: str = "") -> None:
    problems = raw_values(page_html)
    assert not problems, f"{where} shows raw values:\n" + "\n".join(problems[:10])
