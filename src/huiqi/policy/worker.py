"""Read and parse uploaded policy files in a separate, bounded process.

A web upload is never parsed inside the server's event loop or even its process: each file goes to
a child process (forked from a small fork server that has the parser loaded) with a memory ceiling
(``RLIMIT_AS``) and a CPU-time ceiling, and the request waits for it off the event loop. A child
that runs past the time limit is killed; one that runs out of memory dies alone. Either way the
uploader gets a clear message and the server keeps answering other requests. The extraction
limits (:class:`huiqi.policy.ingest.Limits`) bound element, paragraph and unpacked sizes inside it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import threading
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from typing import Any

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


_context_lock = threading.Lock()
_context: Any = None
_slots: dict[int, threading.BoundedSemaphore] = {}


def _mp_context() -> Any:
    """The fork-server context, its server preloaded with the parser (started once)."""
    global _context
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["huiqi.policy.parser"])
            _context = context
        return _context


def _slot(workers: int) -> threading.BoundedSemaphore:
    with _context_lock:
        return _slots.setdefault(workers, threading.BoundedSemaphore(workers))


def _child(
    conn: Connection,
    data: bytes,
    filename: str,
    max_bytes: int,
    limits: dict[str, Any],
    aliases: dict[str, str],
    task_level: str | None = None,
) -> None:
    """Worker body: apply the ceilings, read and parse, send back the result or the refusal."""
    memory = int(limits["memory_mb"]) * 1024 * 1024
    cpu = int(float(limits["timeout_seconds"])) + 2
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    try:
        from huiqi.policy.departments import default_registry
        from huiqi.policy.ingest import ingest_bytes
        from huiqi.policy.parser import parse_source

        ingest_limits = Limits(**limits["ingest"])
        source = ingest_bytes(data, filename, max_bytes=max_bytes, limits=ingest_limits)
        registry = default_registry().with_aliases(aliases) if aliases else default_registry()
        doc = parse_source(source, registry=registry, task_level=task_level)
        conn.send(("ok", asdict(source), doc.model_dump_json()))
    except IngestError as exc:
        conn.send(("refused", exc.reason, ""))
    except MemoryError:
        conn.send(("memory", "", ""))
    except Exception as exc:  # report any other failure of the untrusted input as a refusal
        conn.send(("failed", type(exc).__name__, ""))
    finally:
        conn.close()


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
    context = _mp_context()
    payload = {
        "timeout_seconds": limits.timeout_seconds,
        "memory_mb": limits.memory_mb,
        "ingest": asdict(limits.ingest),
    }
    with _slot(limits.workers):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_child,
            args=(sender, data, filename, max_bytes, payload, dict(aliases or {}), task_level),
            daemon=True,
        )
        process.start()
        sender.close()
        try:
            if not receiver.poll(limits.timeout_seconds):
                raise IngestError(
                    filename,
                    f"解析超时（超过 {limits.timeout_seconds:g} 秒），已终止；请检查文件是否为正常的政策文件 / "
                    f"parsing took longer than {limits.timeout_seconds:g} s and was stopped",
                )
            try:
                status, first, second = receiver.recv()
            except EOFError:
                status, first, second = "died", "", ""
        finally:
            receiver.close()
            if process.is_alive():
                process.kill()
            process.join(5)
    if status == "ok":
        return SourceText(**first), ParsedDocument.model_validate_json(second)
    if status == "refused":
        raise IngestError(filename, first)
    if status in ("memory", "died"):
        raise IngestError(
            filename,
            f"解析所需内存超过上限（{limits.memory_mb} MB），已终止 / "
            f"reading the file needed more than {limits.memory_mb} MB and was stopped",
        )
    raise IngestError(filename, f"无法读取该文件（{first}） / the file could not be read ({first})")


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
