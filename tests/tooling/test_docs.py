"""The series table in docs/series.md is the series: every patch of patches/series, in order, with
its subject and, in its numerics column, exactly the trailers the suite reads from its message
(``Rounding-changed:``, ``Thread-dependent:``, ``Thread-invariant:``; see tvdcn.series)."""
from __future__ import annotations

import email
import re

import pytest

from tvdcn import paths, series

pytestmark = [pytest.mark.tooling]

TABLE_ROW = re.compile(r"^\| (\d{4}) \| (.+?) \| (.+?) \| (.+?) \|$")
KEYS = (series.ROUNDING_TRAILER, series.DEPENDENT_TRAILER, series.INVARIANT_TRAILER)


def patch_headers() -> list[tuple[str, str, list[str]]]:
    """(number, subject, the suite's trailers as "Key: value") of each patch file, in series order."""
    out = []
    for f in series.patch_files():
        msg = email.message_from_bytes(f.read_bytes())
        subject = re.sub(r"\s+", " ", msg["Subject"]).removeprefix("[PATCH] ")
        body = msg.get_payload().split("\n---\n")[0]
        trailers = [f"{k}: {v.strip()}" for k, v in re.findall(rf"^({'|'.join(KEYS)}): (.+)$", body, re.M)]
        out.append((f.name[:4], subject, trailers))
    return out


def table_rows() -> list[tuple[str, str, list[str]]]:
    rows = []
    for line in (paths.REPO / "docs" / "series.md").read_text().splitlines():
        m = TABLE_ROW.match(line)
        if m:
            trailers = [f"{k}: {v.strip()}" for k, v in re.findall(rf"`({'|'.join(KEYS)}): ([^`]+)`", m.group(4))]
            rows.append((m.group(1), m.group(2), trailers))
    return rows


def test_series_table_is_the_series():
    headers = patch_headers()
    assert any(t for _, _, t in headers), "no patch declares anything: the trailer pattern reads nothing"
    assert table_rows() == headers
