"""An enterprise's own bank name, account holder and (imported) name reach the payment file as
readable text, never as formulas."""

from __future__ import annotations

import csv
import io
from datetime import date

from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.enterprise import service as registry
from huiqi.events import ResultChange
from huiqi.grants import service
from huiqi.grants.models import Grant
from huiqi.grants.schemas import BankAccountInput
from tests.grants.conftest import ON, A

NAME = '=HYPERLINK("http://evil.example/","兰州甲")'
BANK = "+甘肃银行"
HOLDER = "@SUM(1+1)"


def test_hostile_enterprise_fields_are_neutralised(
    db_session: Session, matched: list[ResultChange]
) -> None:
    registry.apply_changes(db_session, A, {"name": NAME}, source="市场监管", as_of=date(2024, 6, 1))
    service.grants_from_results(db_session, matched, today=ON)
    service.set_bank_account(
        db_session, A, BankAccountInput.parse(BANK, HOLDER, "6228480012345678901"), actor="ent"
    )
    grant = db_session.scalar(select(Grant).where(Grant.credit_code == A))
    assert grant is not None and grant.enterprise_name == NAME
    service.review(db_session, [grant.id], "approve", actor="officer1", ack_risk=True)
    batch = service.create_disbursement(db_session, actor="officer2")
    rows = service.disbursement_rows(db_session, batch.id)
    parsed = list(csv.reader(io.StringIO(service.disbursement_csv(rows).decode("utf-8-sig"))))
    assert parsed[1][2:5] == ["'" + NAME, "'" + BANK, "'" + HOLDER]
    assert parsed[1][5] == "6228480012345678901" and parsed[1][7] == "3645000"
    sheet = load_workbook(io.BytesIO(service.disbursement_xlsx(rows))).active
    assert sheet is not None
    assert [sheet.cell(2, c).data_type for c in (3, 4, 5)] == ["s", "s", "s"]
    assert sheet["C2"].value == "'" + NAME and sheet["H2"].value == 3_645_000
