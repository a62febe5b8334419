"""Bulk import of enterprises from CSV or XLSX (Chinese or English headers).

The file is streamed row by row (csv module / openpyxl read-only), every row is validated on its
own, and good rows are upserted by credit code in batches, one transaction per batch. A bad row is
reported (row, column, value, reason) and never half-written. Because an unchanged value is left
alone, importing a file again — or re-running an import that was killed half way — ends in the
state of one clean import. A file whose headers cannot be read is refused whole.

Modules: ``headers`` (which column is which field), ``reading`` (CSV and XLSX rows),
``validation`` (checking rows), ``job`` (batches, transactions, the web job), ``report``
(counts and problems), ``template`` (the downloadable templates).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from huiqi.enterprise.importer.headers import columns, is_graduates_header, map_headers
    from huiqi.enterprise.importer.job import run_import, run_job
    from huiqi.enterprise.importer.reading import (
        SheetLimits,
        check_xlsx,
        read_rows,
        sheet_limits_from_settings,
    )
    from huiqi.enterprise.importer.report import ImportRefused, ImportReport, Issue
    from huiqi.enterprise.importer.template import template_bytes, template_columns, write_template
    from huiqi.enterprise.importer.validation import RowContext, validate_hire, validate_row

_HOME = {
    "ImportRefused": "report",
    "ImportReport": "report",
    "Issue": "report",
    "RowContext": "validation",
    "SheetLimits": "reading",
    "check_xlsx": "reading",
    "columns": "headers",
    "is_graduates_header": "headers",
    "map_headers": "headers",
    "read_rows": "reading",
    "run_import": "job",
    "run_job": "job",
    "sheet_limits_from_settings": "reading",
    "template_bytes": "template",
    "template_columns": "template",
    "validate_hire": "validation",
    "validate_row": "validation",
    "write_template": "template",
}
"""The module of each name: imported on first use, so a process that needs one module (the
import's reading process) does not import the database layer with the others."""


def __getattr__(name: str) -> Any:
    """The package's names, each imported from its module when first asked for."""
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ImportRefused",
    "ImportReport",
    "Issue",
    "RowContext",
    "SheetLimits",
    "check_xlsx",
    "columns",
    "is_graduates_header",
    "map_headers",
    "read_rows",
    "run_import",
    "run_job",
    "sheet_limits_from_settings",
    "template_bytes",
    "template_columns",
    "validate_hire",
    "validate_row",
    "write_template",
]
