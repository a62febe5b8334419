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
