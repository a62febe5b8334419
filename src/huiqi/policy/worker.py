"""Read and parse uploaded policy files in a separate, bounded process.

A web upload is never parsed inside the server's event loop or even its process: each file goes to
a child process (``huiqi.core.sandbox``, forked from a fork server that has the parser loaded) with
a memory ceiling and a CPU-time ceiling, and the request waits for it off the event loop. A child
that runs past the time limit is killed; one that runs out of memory dies alone. Either way the
uploader gets a clear message and the server keeps answering other requests. The extraction
limits (:class:`huiqi.policy.ingest.Limits`) bound element, paragraph and unpacked sizes inside it.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from typing import Any

from huiqi.core.sandbox import Bounds, Overrun, run_bounded
from huiqi.policy.ingest import DEFAULT_LIMITS, IngestError, Limits, SourceText
from huiqi.policy.schemas import ParsedDocument


@dataclass(frozen=True)
class ParseLimits:
    """Time, memory and concurrency bounds of upload parsing, plus the extraction limits."""

    timeout_seconds: float = 30.0
    memory_mb: int = 1024
    workers: int = 2
    ingest: Limits = field(default_factory=lambda: DEFAULT_LIMITS)


def limits_from_settings(settings: Any) -> ParseLimits:
    """The parse limits configured in the settings (HUIQI_PARSE_*)."""
    return ParseLimits(
        timeout_seconds=float(settings.parse_timeout_seconds),
        memory_mb=int(settings.parse_memory_mb),
        workers=int(settings.parse_workers),
        ingest=Limits(
            max_unzipped_bytes=int(settings.parse_max_unzipped_mb) * 1024 * 1024,
            max_elements=int(settings.parse_max_elements),
            max_paragraphs=int(settings.parse_max_paragraphs),
        ),
    )


def _parse(
    data: bytes,
    filename: str,
    max_bytes: int,
    ingest: dict[str, Any],
    aliases: dict[str, str],
    task_level: str | None,
) -> tuple[str, Any, str]:
    """Child body: read and parse, return the result or the refusal (runs in the sandbox)."""
    from huiqi.policy.departments import default_registry
    from huiqi.policy.ingest import ingest_bytes
    from huiqi.policy.parser import parse_source

    try:
        source = ingest_bytes(data, filename, max_bytes=max_bytes, limits=Limits(**ingest))
    except IngestError as exc:
        return "refused", exc.reason, ""
    registry = default_registry().with_aliases(aliases) if aliases else default_registry()
    doc = parse_source(source, registry=registry, task_level=task_level)
    return "ok", asdict(source), doc.model_dump_json()


def parse_upload_blocking(
    data: bytes,
    filename: str,
    *,
    max_bytes: int,
    limits: ParseLimits,
    aliases: dict[str, str] | None = None,
    task_level: str | None = None,
) -> tuple[SourceText, ParsedDocument]:
    """Read and parse one upload in a bounded child process (blocks the calling thread)."""
    bounds = Bounds(limits.timeout_seconds, limits.memory_mb, limits.workers)
    args = (data, filename, max_bytes, asdict(limits.ingest), dict(aliases or {}), task_level)
    try:
        status, first, second = run_bounded(
            _parse, args, bounds, name="policy", preload=["huiqi.policy.parser"]
        )
    except Overrun as exc:
        if exc.kind == "timeout":
            raise IngestError(
                filename,
                f"解析超时（超过 {limits.timeout_seconds:g} 秒），已终止；请检查文件是否为正常的政策文件 / "
                f"parsing took longer than {limits.timeout_seconds:g} s and was stopped",
            ) from None
        if exc.kind == "memory":
            raise IngestError(
                filename,
                f"解析所需内存超过上限（{limits.memory_mb} MB），已终止 / "
                f"reading the file needed more than {limits.memory_mb} MB and was stopped",
            ) from None
        raise IngestError(
            filename, f"无法读取该文件（{exc.detail}） / the file could not be read ({exc.detail})"
        ) from None
    if status == "refused":
        raise IngestError(filename, first)
    return SourceText(**first), ParsedDocument.model_validate_json(second)


async def parse_upload(
    data: bytes,
    filename: str,
    *,
    max_bytes: int,
    limits: ParseLimits,
    aliases: dict[str, str] | None = None,
    task_level: str | None = None,
) -> tuple[SourceText, ParsedDocument]:
    """Read and parse one upload in a bounded child process without blocking the event loop."""
    return await asyncio.to_thread(
        parse_upload_blocking,
        data,
        filename,
        max_bytes=max_bytes,
        limits=limits,
        aliases=aliases,
        task_level=task_level,
    )
