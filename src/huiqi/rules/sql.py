"""Rules compiled to SQL (SQLAlchemy Core, every value a bound parameter) over the enterprise_current table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Integer,
    MetaData,
    Numeric,
    Select,
    String,
    Table,
    and_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.sql.elements import ColumnElement

from huiqi.rules.catalogue import Catalogue, default_catalogue
from huiqi.rules.plan import Plan, Prim, Tree

TABLE_NAME = "enterprise_current"
_TYPES: dict[str, Any] = {"money": BigInteger, "int": Integer, "date": Date, "bool": Boolean}


def enterprise_table(metadata: MetaData | None = None, catalogue: Catalogue | None = None) -> Table:
    """The matching-facing table/view of enterprises: id plus every catalogue column."""
    cat = catalogue or default_catalogue()
    md = metadata or MetaData()
    cols: list[Column[Any]] = [Column("id", Integer, primary_key=True)]
    for f in cat.fields.values():
        if f.name == "credit_code":
            cols.append(Column("credit_code", String(18), nullable=False, unique=True))
        else:
            col_type: Any = _TYPES.get(f.kind) or String(200)
            cols.append(Column(f.name, col_type))
    return Table(TABLE_NAME, md, *cols)


def prim_sql(p: Prim, t: Table) -> ColumnElement[bool]:
    """A boolean SQL expression that is NULL exactly when the primitive is unknown."""
    if p.op == "never":
        return false()
    if p.kind == "ratio":
        a, b = t.c[p.cols[0]], t.c[p.cols[1]]
        num, den = p.const
        lhs = cast(a, Numeric(38, 0)) * literal(den, Integer)
        rhs = cast(b, Numeric(38, 0)) * literal(num, Integer)
        cmp = {
            "=": lhs == rhs,
            "!=": lhs != rhs,
            "<": lhs < rhs,
            "<=": lhs <= rhs,
            ">": lhs > rhs,
            ">=": lhs >= rhs,
        }[p.op]
        expr = case((or_(a.is_(None), b.is_(None)), null()), (b > 0, cmp), else_=false())
        return type_coerce(expr, Boolean)
    if p.kind == "cert":
        start, end = t.c[p.cols[0]], t.c[p.cols[1]]
        return and_(start <= p.const, end >= p.const)
    col = t.c[p.cols[0]]
    if p.kind == "prefix":
        return or_(*(func.substr(col, 1, len(pre)) == pre for pre in p.const))
    if p.kind == "in":
        return col.in_(list(p.const)) if p.op == "in" else col.not_in(list(p.const))
    if p.kind == "between":
        inside = and_(col > p.const[0], col <= p.const[1])
        return inside if p.op == "between" else not_(inside)
    value = bindparam(None, p.const, type_=col.type)
    return {
        "=": col == value,
        "!=": col != value,
        "<": col < value,
        "<=": col <= value,
        ">": col > value,
        ">=": col >= value,
    }[p.op]


def tree_sql(tree: Tree, atoms: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    """SQL three-valued logic is Kleene logic, so all/any/not map onto AND/OR/NOT."""
    kind = tree[0]
    if kind == "atom":
        return atoms[tree[1]]
    if kind == "not":
        return not_(tree_sql(tree[1], atoms))
    parts = [tree_sql(c, atoms) for c in tree[1]]
    return and_(*parts) if kind == "all" else or_(*parts)


def code_sql(expr: ColumnElement[bool]) -> ColumnElement[Any]:
    """1 true, 0 false, 2 unknown."""
    return case((expr, 1), (not_(expr), 0), else_=2)


def rule_expr(plan: Plan, r: int, t: Table) -> ColumnElement[bool]:
    """The whole condition of rule r as one SQL boolean."""
    pr = plan.rules[r]
    atoms = [prim_sql(plan.prims[i], t) for i in pr.atom_prims]
    return tree_sql(pr.tree, atoms)


def results_query(plan: Plan, r: int, t: Table, with_conditions: bool = False) -> Select[Any]:
    """id, credit_code and the result code of rule r for every enterprise (optionally per-condition codes c0…)."""
    cols: list[Any] = [t.c.id, t.c.credit_code, code_sql(rule_expr(plan, r, t)).label("result")]
    if with_conditions:
        pr = plan.rules[r]
        cols += [
            code_sql(prim_sql(plan.prims[i], t)).label(f"c{j}") for j, i in enumerate(pr.atom_prims)
        ]
    return select(*cols).order_by(t.c.id)


def fitting_query(plan: Plan, r: int, t: Table, unknown: bool = False) -> Select[Any]:
    """Enterprises that fit rule r inside the database (or whose fit is unknown)."""
    expr = rule_expr(plan, r, t)
    where = expr.is_(None) if unknown else expr
    return select(t.c.id, t.c.credit_code).where(where).order_by(t.c.id)
