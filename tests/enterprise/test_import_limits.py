"""A spreadsheet bomb is refused before openpyxl reads it."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from huiqi.enterprise.importer import ImportRefused, read_rows


def test_xlsx_bomb_is_refused_from_the_zip_directory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        # 120 MB of shared strings compress to a few hundred KB.
        archive.writestr(
            "xl/sharedStrings.xml", "<sst>" + "<si><t>a</t></si>" * 8_000_000 + "</sst>"
        )
    assert path.stat().st_size < 1_000_000
    with pytest.raises(ImportRefused) as info:
        next(read_rows(path))
    assert "压缩炸弹" in str(info.value)
