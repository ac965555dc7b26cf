"""The series table in docs/series.md is the series: every patch of patches/series, in order, with
its subject and, in its numerics column, its ``Rounding-changed:`` trailer (the suite's
declaration, read by tvdcn.series) exactly when the patch has one."""
from __future__ import annotations

import email
import re

import pytest

from tvdcn import paths, series

pytestmark = [pytest.mark.tooling]

TABLE_ROW = re.compile(r"^\| (\d{4}) \| (.+?) \| (.+?) \| (.+?) \|$")


def patch_headers() -> list[tuple[str, str, str]]:
    """(number, subject, Rounding-changed value or "") of each patch file, in series order."""
    out = []
    for f in series.patch_files():
        msg = email.message_from_bytes(f.read_bytes())
        subject = re.sub(r"\s+", " ", msg["Subject"]).removeprefix("[PATCH] ")
        trailer = re.search(rf"^{series.ROUNDING_TRAILER}: (.+)$", f.read_text(), re.M)
        out.append((f.name[:4], subject, trailer.group(1).strip() if trailer else ""))
    return out


def table_rows() -> list[tuple[str, str, str]]:
    rows = []
    for line in (paths.REPO / "docs" / "series.md").read_text().splitlines():
        m = TABLE_ROW.match(line)
        if m:
            declared = re.search(rf"`{series.ROUNDING_TRAILER}: ([^`]+)`", m.group(4))
            rows.append((m.group(1), m.group(2), declared.group(1) if declared else ""))
    return rows


def test_series_table_is_the_series():
    assert table_rows() == patch_headers()
