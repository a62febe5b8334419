"""Application materials: the file type read from the content (never from the name or the
browser's claim), the size checked against the call, stored under the data folder by hash."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from huiqi.funds.errors import FundsError

# Type key → (label, MIME type). The keys are what a call lists as allowed.
TYPES: dict[str, tuple[str, str]] = {
    "pdf": ("PDF", "application/pdf"),
    "jpg": ("JPEG", "image/jpeg"),
    "png": ("PNG", "image/png"),
    "docx": (
        "Word (DOCX)",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    "xlsx": ("Excel (XLSX)", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
}
ZIP_MAGIC = b"PK\x03\x04"


def _office_kind(data: bytes) -> str | None:
    """DOCX or XLSX by the parts inside the ZIP container (only its directory is read)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = set(z.namelist())
    except (zipfile.BadZipFile, ValueError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        return "xlsx"
    return None


def sniff(data: bytes) -> str | None:
    """The type key of a file from its first bytes (and, for Office files, its parts)."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(ZIP_MAGIC):
        return _office_kind(data)
    return None


@dataclass(frozen=True)
class Checked:
    """A material that passed the checks: its type, size and hash."""

    kind: str
    content_type: str
    size: int
    sha256: str


def check(data: bytes, *, name_zh: str, allowed: list[str], max_mb: int) -> Checked:
    """Refuse an empty, oversized or wrongly typed file, naming the material and what is allowed."""
    allowed_text = "、".join(TYPES[t][0] for t in allowed if t in TYPES)
    if not data:
        raise FundsError(f"{name_zh}:文件为空", f"{name_zh}: the file is empty", field="file")
    if len(data) > max_mb * 1024 * 1024:
        raise FundsError(
            f"{name_zh}:文件超过 {max_mb} MB 上限",
            f"{name_zh}: the file exceeds {max_mb} MB",
            field="file",
        )
    kind = sniff(data)
    if kind is None or kind not in allowed:
        found = TYPES[kind][0] if kind else "无法识别的格式"
        raise FundsError(
            f"{name_zh}:文件类型不符合要求(检测为 {found}),请上传 {allowed_text} 文件",
            f"{name_zh}: wrong file type ({kind or 'unknown'}); allowed: {', '.join(allowed)}",
            field="file",
        )
    return Checked(kind, TYPES[kind][1], len(data), hashlib.sha256(data).hexdigest())


def store(data: bytes, checked: Checked, application_id: int, data_dir: Path) -> str:
    """Write the file under the data folder (content-addressed, atomically); returns its path
    relative to the data folder. A rolled-back upload leaves at most an unreferenced file."""
    relative = Path("funds") / str(application_id) / f"{checked.sha256}.{checked.kind}"
    target = data_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        tmp = target.with_suffix(target.suffix + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return relative.as_posix()


def path_of(data_dir: Path, stored_path: str) -> Path:
    """The absolute path of a stored material (refusing anything outside the funds folder)."""
    root = (data_dir / "funds").resolve()
    found = (data_dir / stored_path).resolve()
    if root not in found.parents:
        raise FundsError("材料路径无效", "invalid material path")
    return found
