"""Lenders see anonymous needs only as (region, industry, size) cells that at least ten registered
enterprises share; a declining lender loses the shared data; a need submitted twenty times in
parallel with one idempotency key is posted once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from huiqi.accounts import service as accounts
from huiqi.accounts.models import User
from huiqi.core import migrate
from huiqi.core.config import Settings
from huiqi.core.db import install_session_factory, make_engine
from huiqi.enterprise import population
from huiqi.enterprise.models import enterprise_current
from huiqi.finance import service as svc
from huiqi.finance.models import Need
from huiqi.finance.schemas import NeedIn

from .conftest import DAY, ENT_A, GANSU_BANK, PASSWORD, register

WAN = 1_000_000


def _need(session: Session, user: User, **over: Any) -> Need:
    data = {"amount_fen": 300 * WAN, "term_months": 12, "purpose": "补充流动资金,购置设备"}
    data.update(over)
    return svc.post_need(session, user, NeedIn.model_validate(data), on=DAY)


def test_a_declining_lender_loses_the_shared_data(
    db_session: Session, users: dict[str, User], product_data: Callable[..., Any]
) -> None:
    s = db_session
    product = svc.publish_product(s, users["gsbank"], product_data(), on=DAY)
    need = _need(s, users["ent_a"])
    (out,) = svc.apply(
        s, users["ent_a"], need.id, [product.id], ["revenue", "tax_credit_rating"], on=DAY
    )
    app = out.application
    assert app is not None
    before = {f.name: f for f in svc.shared_view(s, users["gsbank"], app)}
    assert before["revenue"].value == 48_000_000_00
    svc.transition(s, users["gsbank"], app.id, "decline", reason="经营流水不足", on=DAY)
    assert svc.active_consents(s, app) == []
    after = {f.name: f for f in svc.shared_view(s, users["gsbank"], app)}
    assert after["revenue"].value is None and not after["revenue"].shared
    assert after["tax_credit_rating"].value is None


def _generated_registry(session: Session, size: int, seed: int) -> list[dict[str, Any]]:
    population.load_rows(session, population.generate(size, seed))
    session.flush()
    return [
        dict(r._mapping)
        for r in session.execute(
            select(
                enterprise_current.c.credit_code,
                enterprise_current.c.region_code,
                enterprise_current.c.industry_code,
                enterprise_current.c.size_class,
            )
        )
    ]


def _cell_count(rows: list[dict[str, Any]], cell: svc.NeedCell) -> int:
    """Enterprises of the registry that the shown cell covers (counted here independently)."""
    return sum(
        1
        for r in rows
        if (cell.region_code is None or (r["region_code"] or "").startswith(cell.region_code))
        and (
            cell.industry_code is None or (r["industry_code"] or "").startswith(cell.industry_code)
        )
        and (cell.size_class is None or r["size_class"] == cell.size_class)
    )


def test_lenders_see_needs_generalised_to_cells_of_ten_enterprises(
    db_session: Session, users: dict[str, User], product_data: Callable[..., Any]
) -> None:
    s = db_session
    rows = _generated_registry(s, 600, seed=13)
    exact: dict[tuple[Any, ...], int] = {}
    for r in rows:
        key = (r["region_code"], r["industry_code"], r["size_class"])
        exact[key] = exact.get(key, 0) + 1
    # Needs from enterprises whose exact combination is unique in the registry, and a few others.
    unique = [
        r for r in rows if exact[(r["region_code"], r["industry_code"], r["size_class"])] == 1
    ]
    assert len(unique) > 100  # raw codes would single out most enterprises
    posters = unique[:12] + [r for r in rows if r not in unique][:3]
    needs = []
    for i, r in enumerate(posters):
        user = accounts.create_user(
            s,
            username=f"poster-{i}",
            password=PASSWORD,
            role="enterprise",
            credit_code=r["credit_code"],
        )
        needs.append((r, _need(s, user)))
    svc.publish_product(
        s, users["gsbank"], product_data(required_fields=[], conditions_yaml=""), on=DAY
    )
    fits = {f.need.id: f for f in svc.needs_for_lender(s, GANSU_BANK, on=DAY)}
    assert len(fits) == len(needs)
    shown_levels = set()
    for row, need in needs:
        shown = fits[need.id].shown
        assert _cell_count(rows, shown) >= svc.MIN_CELL_SIZE, (row, shown)
        # The shown cell is true of the enterprise: a prefix of its codes, its size or nothing.
        assert (row["region_code"] or "").startswith(shown.region_code or "")
        assert (row["industry_code"] or "").startswith(shown.industry_code or "")
        assert shown.size_class in (None, row["size_class"])
        raw = (row["region_code"], row["industry_code"], row["size_class"])
        if exact[raw] == 1:
            assert (shown.region_code, shown.industry_code, shown.size_class) != raw
        shown_levels.add((len(shown.region_code or ""), len(shown.industry_code or "")))
    # Most needs keep some detail (a city or a division), not only "somewhere in Gansu".
    assert shown_levels - {(0, 0), (2, 0)}


def test_the_lender_api_and_page_show_only_the_generalised_cell(
    client: TestClient,
    db_session: Session,
    users: dict[str, User],
    product_data: Callable[..., Any],
) -> None:
    s = db_session
    svc.publish_product(s, users["gsbank"], product_data(required_fields=[], conditions_yaml=""))
    need = _need(s, users["ent_a"], deadline=None)
    s.commit()
    # Enterprise A (Lanzhou 城关区, class 3424, small) is alone in this registry: nothing is shown.
    token = client.post(
        "/api/v1/auth/token", json={"username": "gsbank", "password": PASSWORD}
    ).json()["token"]
    listed = client.get("/api/v1/finance/needs", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200
    (item,) = [n for n in listed.json() if n["id"] == need.id]
    assert item["credit_code"] is None
    assert (item["region_code"], item["industry_code"], item["size_class"]) == (None, None, None)
    # With nine more small manufacturers of division 34 in Lanzhou, the city and division show.
    for i in range(9):
        code = _credit_code(i)
        register(
            s,
            code,
            {
                "region_code": "62010" + str(3 + i % 4),
                "industry_code": "34" + f"{i:02d}",
                "size_class": "small",
            },
        )
    s.commit()
    listed = client.get("/api/v1/finance/needs", headers={"Authorization": f"Bearer {token}"})
    (item,) = [n for n in listed.json() if n["id"] == need.id]
    assert (item["region_code"], item["industry_code"], item["size_class"]) == (
        "6201",
        "34",
        "small",
    )
    assert ENT_A not in listed.text and "620102" not in listed.text and "3424" not in listed.text


def _credit_code(i: int) -> str:
    """A valid 统一社会信用代码 in Lanzhou (check character computed per GB 32100-2015)."""
    from huiqi.core.codes import credit_check_char

    body = f"91620102MA7{i:06d}"[:17]
    return body + credit_check_char(body)


def test_twenty_parallel_submissions_with_one_key_post_one_need(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'parallel.db'}"
    migrate.upgrade(url)
    engine = make_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    install_session_factory(factory)
    with factory() as s:
        accounts.create_user(
            s, username="ent-par", password=PASSWORD, role="enterprise", credit_code=ENT_A
        )
        register(
            s, ENT_A, {"region_code": "620102", "industry_code": "3424", "size_class": "small"}
        )
        s.commit()
    from huiqi.web.app import create_app

    app = create_app(
        Settings(
            env="test", data_dir=tmp_path, secret_key="parallel-test-secret-key", database_url=url
        ),
        configure_db=False,
    )
    body = {"amount_fen": 300 * WAN, "term_months": 12, "purpose": "补充流动资金"}
    statuses: list[int] = []
    ids: list[int] = []
    with TestClient(app, base_url="https://testserver") as c:
        token = c.post(
            "/api/v1/auth/token", json={"username": "ent-par", "password": PASSWORD}
        ).json()["token"]
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "need-2025-09-29-a"}
        start = threading.Barrier(20)

        def submit() -> None:
            start.wait()
            r = c.post("/api/v1/finance/needs", json=body, headers=headers)
            statuses.append(r.status_code)
            if r.status_code == 201:
                ids.append(r.json()["id"])

        threads = [threading.Thread(target=submit) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        other = c.post(
            "/api/v1/finance/needs",
            json=body,
            headers={**headers, "Idempotency-Key": "need-2025-09-29-b"},
        )
        bad = c.post(
            "/api/v1/finance/needs",
            json=body,
            headers={**headers, "Idempotency-Key": "键".encode()},
        )
    assert statuses == [201] * 20
    assert len(set(ids)) == 1
    assert other.status_code == 201 and other.json()["id"] != ids[0]
    assert bad.status_code == 422
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Need)) == 2
    engine.dispose()


@pytest.mark.parametrize("key", ["", "x" * 65])
def test_idempotency_keys_are_checked(
    db_session: Session, users: dict[str, User], key: str
) -> None:
    with pytest.raises(svc.InvalidInput):
        svc.post_need(
            db_session,
            users["ent_a"],
            NeedIn(amount_fen=300 * WAN, term_months=12, purpose="补充流动资金"),
            on=date(2025, 9, 29),
            idempotency_key=key,
        )


def test_full_width_region_prefixes_of_a_product_are_stored_as_ascii(
    db_session: Session, users: dict[str, User], product_data: Callable[..., Any]
) -> None:
    product = svc.publish_product(
        db_session,
        users["gsbank"],
        product_data(region_prefixes=["６２０１"], industry_prefixes=["ｃ"]),
        on=DAY,
    )
    assert product.region_prefixes == ["6201"] and product.industry_prefixes == ["C"]
    need = _need(db_session, users["ent_a"])
    fits = svc.needs_for_lender(db_session, GANSU_BANK, on=DAY)
    assert need.id in {f.need.id for f in fits}
