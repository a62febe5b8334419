"""Word and PDF renditions of policy texts, shared by the seed and corpus rendition makers.

PDFs are written with reportlab's invariant mode (no creation date or random id), so that
regenerating a rendition from the same text gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

FONT = "STSong-Light"  # a CID font every PDF reader has: the text layer holds real characters


def write_docx(lines: list[str], path: Path, *, table: list[list[str]] | None = None) -> None:
    """A Word file: the first line as heading, one paragraph per line, then ``table`` if given."""
    import docx

    document = docx.Document()
    document.add_heading(lines[0], level=1)
    for line in lines[1:]:
        document.add_paragraph(line)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    document.save(str(path))


def _register_font() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    pdfmetrics.registerFont(UnicodeCIDFont(FONT))


def write_pdf(lines: list[str], path: Path) -> None:
    """A PDF printing each line wrapped at the text width (36 characters at 12 pt), as offices do."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    _register_font()
    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    width, height = A4
    y = height - 60
    per_line = 36  # characters that fit the text width at 12 pt

    def emit(text: str) -> None:
        nonlocal y
        if y < 60:
            pdf.showPage()
            y = height - 60
        pdf.setFont(FONT, 12)
        pdf.drawString(50, y, text)
        y -= 18

    for line in lines:
        for i in range(0, len(line), per_line):
            emit(line[i : i + per_line])
        y -= 8
    pdf.save()


def write_pdf_table(
    lines: list[str],
    rows: list[list[str]],
    path: Path,
    widths: list[int],
    repeat_rows: int = 0,
) -> None:
    """A PDF of heading lines and a ruled table (cells wrapped, long tables across pages).

    ``repeat_rows`` header rows are printed again at the top of every page the table runs onto,
    as Word and WPS do for a table whose header row is marked to repeat.
    """
    from reportlab import rl_config
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

    _register_font()
    rl_config.invariant = 1
    heading = ParagraphStyle("heading", fontName=FONT, fontSize=14, leading=22)
    cell = ParagraphStyle("cell", fontName=FONT, fontSize=9, leading=12, wordWrap="CJK")
    story: list = [Paragraph(line, heading) for line in lines]  # type: ignore[type-arg]
    grid = Table(
        [[Paragraph(value, cell) for value in row] for row in rows],
        colWidths=widths,
        repeatRows=repeat_rows,
    )
    grid.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story.append(grid)
    SimpleDocTemplate(str(path), pagesize=landscape(A4), invariant=1).build(story)
