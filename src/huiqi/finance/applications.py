"""Applications in one step with consent, their workflow and events, revoking consent,
notices and reminders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.accounts.scopes import can_access, scope_of
from huiqi.core.clock import today
from huiqi.core.dates import add_working_days
from huiqi.core.db import utcnow
from huiqi.core.money import format_fen_en
from huiqi.enterprise import repository as ent_repo
from huiqi.enterprise.catalogue import label_of
from huiqi.finance import eligibility as elig
from huiqi.finance.base import (
    Forbidden,
    InvalidInput,
    NotFound,
    Reason,
    TransitionError,
    lender_owns,
    officer_reaches,
    pct,
    shareable_fields,
    shareable_names,
    wan,
)
from huiqi.finance.consent import active_consents
from huiqi.finance.matchmaking import match_need
from huiqi.finance.models import (
    FINAL_STATUSES,
    STATUS_LABELS,
    Application,
    ApplicationEvent,
    AppStatus,
    Consent,
    Product,
    ProductStatus,
)
from huiqi.finance.needs import get_need


@dataclass
class ApplyOutcome:
    """What happened for one product of a one-step application."""

    product_id: int
    outcome: Literal["created", "existing", "refused"]
    application: Application | None
    reasons: list[Reason]


# an application of the same need × product exists (earlier, or won by a concurrent submission)
ALREADY_SUBMITTED = Reason("已提交过,未重复创建", "already submitted; no duplicate created", None)


def _due(params: elig.FinanceParams, product: Product, status: str, on: date) -> date | None:
    """Deadline of the next step, counted in working days on the official calendar."""
    if status == AppStatus.submitted:
        return add_working_days(on, params.count_on("finance_accept_working_days", on))
    if status == AppStatus.accepted:
        return add_working_days(on, product.decision_days)
    if status == AppStatus.approved:
        return add_working_days(on, params.count_on("finance_disburse_working_days", on))
    return None


def _event(
    session: Session,
    app: Application,
    on: date,
    *,
    kind: str,
    actor: User | None,
    from_status: str | None = None,
    to_status: str | None = None,
    note: str = "",
    detail: dict[str, Any] | None = None,
) -> ApplicationEvent:
    event = ApplicationEvent(
        application_id=app.id,
        on=on,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        actor_id=actor.id if actor else None,
        actor_role=actor.role if actor else None,
        note=note,
        due_on=app.due_on,
        detail=detail or {},
    )
    session.add(event)
    session.flush()
    return event


def _notify(
    session: Session, app: Application, key: str, subject: str, body: str, en: tuple[str, str]
) -> None:
    """Tell the enterprise through the push channels (inbox, e-mail, webhook, SMS); `en` is the
    English subject and body."""
    from huiqi.notify.service import enqueue

    enqueue(
        session,
        credit_code=app.credit_code,
        topic="financing",
        subject=subject,
        body=body,
        link=f"/finance/applications/{app.id}",
        dedupe_key=f"finance:application:{app.id}:{key}",
        deadline=app.due_on,
        subject_en=en[0],
        body_en=en[1],
    )


def _notify_lender(
    session: Session, app: Application, key: str, subject: str, body: str, en: tuple[str, str]
) -> None:
    """Tell every user of the application's lender (inbox, and e-mail when the account has one);
    `en` is the English subject and body.

    The enterprise's identity is left out of the message: it travels by e-mail, and the
    application page shows the lender what it may see.
    """
    from huiqi.notify.service import enqueue_institution

    enqueue_institution(
        session,
        institution=app.institution,
        topic="financing",
        subject=subject,
        body=body,
        link=f"/finance/applications/{app.id}",
        dedupe_key=f"finance:lender:{app.id}:{key}",
        deadline=app.due_on,
        subject_en=en[0],
        body_en=en[1],
    )


def apply(
    session: Session,
    user: User,
    need_id: int,
    product_ids: Sequence[int],
    fields: Sequence[str],
    *,
    params: elig.FinanceParams | None = None,
    on: date | None = None,
    per_product: Mapping[int, Sequence[str]] | None = None,
) -> list[ApplyOutcome]:
    """Send one need to several products at once, sharing the chosen fields with each lender.

    With `per_product` the enterprise consents per product: each lender receives only the
    fields ticked for its product (products left out of it share `fields`). Submitting again
    finds the existing application (one per need × product).
    """
    if user.role != Role.enterprise:
        raise Forbidden("只有企业用户可以提交融资申请", "only enterprise users apply")
    params = params or elig.default_params()
    on = on or today()
    need = get_need(session, user, need_id)
    if need.status != "open":
        raise InvalidInput("该融资需求已关闭", "this need is closed")
    chosen = list(dict.fromkeys(fields))
    consented = {pid: list(dict.fromkeys(names)) for pid, names in (per_product or {}).items()}
    unknown = sorted(
        set(chosen).union(*consented.values()) - shareable_names()
        if consented
        else set(chosen) - shareable_names()
    )
    if unknown:
        raise InvalidInput(
            f"不能共享未知字段:{', '.join(unknown)}",
            f"unknown fields to share: {', '.join(unknown)}",
        )
    ids = list(dict.fromkeys(product_ids))
    products = [p for p in (session.get(Product, i) for i in ids) if p is not None]
    result = match_need(session, need, params=params, on=on, products=products)
    matches = result.by_product()
    dead = {u.product.id: u.reason for u in result.unevaluable}
    labels = {f.name: f.zh for f in shareable_fields()}
    out: list[ApplyOutcome] = []
    for pid in ids:
        existing = _application_of_family(session, need.id, pid)
        if existing is not None:
            out.append(
                ApplyOutcome(
                    pid,
                    "existing",
                    existing,
                    [ALREADY_SUBMITTED],
                )
            )
            continue
        product = session.get(Product, pid)
        if (
            product is None
            or product.status != ProductStatus.published
            or (pid not in matches and pid not in dead)
        ):
            out.append(
                ApplyOutcome(
                    pid,
                    "refused",
                    None,
                    [
                        Reason(
                            "产品不存在、已下架或不在有效期",
                            "the product does not exist, is withdrawn or not in force",
                            False,
                        )
                    ],
                )
            )
            continue
        if pid in dead:
            out.append(
                ApplyOutcome(
                    pid,
                    "refused",
                    None,
                    [
                        Reason(
                            f"产品暂时无法评估:{dead[pid]}",
                            f"the product cannot be evaluated: {dead[pid]}",
                            False,
                        )
                    ],
                )
            )
            continue
        match = matches[pid]
        if match.blockers:
            out.append(ApplyOutcome(pid, "refused", None, list(match.blockers)))
            continue
        mine = consented.get(pid, chosen)
        missing = [f for f in product.required_fields if f not in mine]
        if missing:
            names = "、".join(labels.get(f, f) for f in missing)
            out.append(
                ApplyOutcome(
                    pid,
                    "refused",
                    None,
                    [
                        Reason(
                            f"该产品需要共享:{names}",
                            f"the product needs these fields shared: {', '.join(missing)}",
                            False,
                        )
                    ],
                )
            )
            continue
        app = Application(
            need_id=need.id,
            product_id=pid,
            credit_code=need.credit_code,
            institution=product.institution,
            status=AppStatus.submitted.value,
            amount_fen=need.amount_fen,
            term_months=need.term_months,
            eligibility=match.eligibility,
            lpr_bp=match.lpr_bp,
            rate_bp=match.rate_bp,
            guarantee_fee_bp=match.fee_bp,
            submitted_on=on,
        )
        app.due_on = _due(params, product, AppStatus.submitted, on)
        try:
            with session.begin_nested():
                session.add(app)
                session.flush()
        except IntegrityError:
            # A concurrent submission of the same need × product won the race.
            existing = session.scalar(
                select(Application).where(
                    Application.need_id == need.id, Application.product_id == pid
                )
            )
            out.append(
                ApplyOutcome(
                    pid,
                    "existing",
                    existing,
                    [ALREADY_SUBMITTED],
                )
            )
            continue
        for name in mine:
            session.add(Consent(application_id=app.id, field=name, granted_by=user.id))
        _event(
            session,
            app,
            on,
            kind="transition",
            actor=user,
            to_status=AppStatus.submitted.value,
            detail={"fields": chosen},
        )
        _notify(
            session,
            app,
            "submitted",
            f"融资申请已提交:{product.name}",
            f"您的融资申请({wan(app.amount_fen)},{app.term_months} 个月)已提交至{product.institution},"
            f"受理时限 {app.due_on}。共享字段:{'、'.join(labels.get(f, f) for f in chosen) or '无'}。",
            (
                f"Financing application submitted: {product.name}",
                f"Your application ({format_fen_en(app.amount_fen)}, {app.term_months} months)"
                f" went to {product.institution}, to be accepted by {app.due_on}. Data shared: "
                + (", ".join(label_of(f, "en") for f in chosen) or "none")
                + ".",
            ),
        )
        _notify_lender(
            session,
            app,
            "submitted",
            f"新的融资申请 #{app.id}:{product.name}",
            f"贵机构的产品「{product.name}」(第 {product.version} 版)收到新的融资申请 #{app.id}:"
            f"{wan(app.amount_fen)},{app.term_months} 个月。请于 {app.due_on} 前受理"
            f"(工作日计算)。企业授权共享 {len(chosen)} 项数据,请在申请页查看。",
            (
                f"New financing application #{app.id}: {product.name}",
                f"Your product “{product.name}” (version {product.version}) received application"
                f" #{app.id}: {format_fen_en(app.amount_fen)}, {app.term_months} months. Accept"
                f" it by {app.due_on} (working days). The enterprise shares {len(chosen)} data"
                " items; see the application page.",
            ),
        )
        out.append(
            ApplyOutcome(
                pid,
                "created",
                app,
                [
                    Reason(
                        f"已提交至{product.institution}",
                        f"submitted to {product.institution}",
                        True,
                    )
                ],
            )
        )
    return out


def _application_of_family(session: Session, need_id: int, product_id: int) -> Application | None:
    """The need's application to any version of the product, if there is one."""
    product = session.get(Product, product_id)
    if product is None:
        return None
    family = product.family_id or product.id
    return session.scalar(
        select(Application)
        .join(Product, Product.id == Application.product_id)
        .where(
            Application.need_id == need_id,
            (Product.family_id == family) | (Product.id == family),
        )
        .order_by(Application.id)
        .limit(1)
    )


def get_application(session: Session, user: User, app_id: int) -> Application:
    """An application visible to the user: the enterprise's own, the addressed lender's, or any
    an officer oversees (`officer_reaches`)."""
    app = session.get(Application, app_id)
    if app is None:
        raise NotFound("融资申请")
    if user.role == Role.enterprise and app.credit_code == user.credit_code:
        return app
    if user.role == Role.bank and app.institution == user.institution:
        return app
    if officer_reaches(session, user, app.credit_code):
        return app
    raise NotFound("融资申请")


def applications_for(session: Session, user: User) -> list[Application]:
    """Applications the user may see, newest first."""
    q = select(Application).order_by(Application.id.desc())
    if user.role == Role.enterprise:
        q = q.where(Application.credit_code == user.credit_code)
    elif user.role == Role.bank:
        q = q.where(Application.institution == user.institution)
    elif user.role not in (Role.officer, Role.admin):
        return []
    elif user.region_prefix:
        q = q.where(Application.credit_code.in_(ent_repo.codes_in_region(user.region_prefix)))
    return list(session.scalars(q))


ACTIONS: dict[str, tuple[frozenset[str], AppStatus, str]] = {
    "accept": (frozenset({AppStatus.submitted}), AppStatus.accepted, Role.bank),
    "approve": (frozenset({AppStatus.accepted}), AppStatus.approved, Role.bank),
    "decline": (
        frozenset({AppStatus.submitted, AppStatus.accepted}),
        AppStatus.declined,
        Role.bank,
    ),
    "disburse": (frozenset({AppStatus.approved}), AppStatus.disbursed, Role.bank),
    "withdraw": (
        frozenset({AppStatus.submitted, AppStatus.accepted, AppStatus.approved}),
        AppStatus.withdrawn,
        Role.enterprise,
    ),
}
ACTION_LABELS = {
    "accept": ("受理", "accept"),
    "approve": ("批准", "approve"),
    "decline": ("拒绝", "decline"),
    "disburse": ("放款", "disburse"),
    "withdraw": ("撤回", "withdraw"),
}


def allowed_actions(app: Application, user: User) -> list[str]:
    """The steps this user may take on the application now."""
    return [
        a
        for a, (sources, _to, role) in ACTIONS.items()
        if app.status in sources
        and user.role == role
        and (
            lender_owns(user, app.institution)
            if role == Role.bank
            else can_access(scope_of(user), credit_code=app.credit_code)
        )
    ]


def transition(
    session: Session,
    user: User,
    app_id: int,
    action: str,
    *,
    reason: str | None = None,
    amount_fen: int | None = None,
    rate_bp: int | None = None,
    params: elig.FinanceParams | None = None,
    on: date | None = None,
) -> Application:
    """Move an application one step; illegal steps are refused with the allowed ones named."""
    params = params or elig.default_params()
    on = on or today()
    app = get_application(session, user, app_id)
    if action not in ACTIONS:
        raise InvalidInput(f"未知操作 {action!r}", f"unknown action {action!r}")
    sources, target, role = ACTIONS[action]
    if user.role != role:
        raise Forbidden(
            f"「{ACTION_LABELS[action][0]}」只能由{'金融机构' if role == Role.bank else '申请企业'}执行",
            f"only the {'lender' if role == Role.bank else 'applicant'} may {action}",
        )
    if app.status not in sources:
        now_zh, now_en = STATUS_LABELS[app.status]
        allowed = allowed_actions(app, user)
        raise TransitionError(
            f"申请当前为「{now_zh}」,不能「{ACTION_LABELS[action][0]}」;"
            f"可执行:{'、'.join(ACTION_LABELS[a][0] for a in allowed) or '无(已结束)'}",
            f"the application is {now_en.lower()}: cannot {action}; allowed: {', '.join(allowed) or 'none (closed)'}",
        )
    product = app.product
    note = (reason or "").strip()
    if action == "decline" and not note:
        raise InvalidInput("拒绝须说明理由", "a decline needs a reason")
    if action == "approve":
        amount = amount_fen if amount_fen is not None else app.amount_fen
        if not product.amount_min_fen <= amount <= product.amount_max_fen:
            raise InvalidInput(
                f"批准金额 {wan(amount)} 不在产品额度 {wan(product.amount_min_fen)}–{wan(product.amount_max_fen)} 内",
                f"approved amount {wan(amount)} is outside the product range",
            )
        if amount > app.amount_fen:
            raise InvalidInput(
                f"批准金额 {wan(amount)} 高于申请金额 {wan(app.amount_fen)}",
                f"approved amount {wan(amount)} is above the amount applied for",
            )
        app.approved_amount_fen = amount
        app.approved_rate_bp = rate_bp if rate_bp is not None else app.rate_bp
        app.decided_on = on
    elif action == "decline":
        app.decline_reason = note
        app.decided_on = on
        # A lender that declines has no more use for the enterprise's data: access ends.
        now = utcnow()
        for consent in active_consents(session, app):
            consent.revoked_at = now
            consent.revoked_by = user.id
    elif action == "disburse":
        approved = app.approved_amount_fen or app.amount_fen
        amount = amount_fen if amount_fen is not None else approved
        if amount > approved:
            raise InvalidInput(
                f"放款金额 {wan(amount)} 高于批准金额 {wan(approved)}",
                f"disbursed amount {wan(amount)} is above the approved {wan(approved)}",
            )
        app.disbursed_amount_fen = amount
        app.disbursed_on = on
    elif action == "withdraw":
        # Withdrawing ends the request, so the lender's access to the shared fields ends too.
        now = utcnow()
        for consent in active_consents(session, app):
            consent.revoked_at = now
            consent.revoked_by = user.id
    old = app.status
    app.status = target.value
    app.due_on = _due(params, product, target, on)
    app.updated_at = utcnow()
    _event(
        session,
        app,
        on,
        kind="transition",
        actor=user,
        from_status=old,
        to_status=target.value,
        note=note,
    )
    _notify_step(session, app, action)
    if action == "withdraw":
        _notify_lender(
            session,
            app,
            "withdrawn",
            f"融资申请 #{app.id} 已被企业撤回:{product.name}",
            f"申请 #{app.id}({wan(app.amount_fen)},{app.term_months} 个月)已由企业于 {on} 撤回,"
            "贵机构对其共享数据的查看权限同时终止,无需继续办理。",
            (
                f"Financing application #{app.id} withdrawn by the enterprise: {product.name}",
                f"Application #{app.id} ({format_fen_en(app.amount_fen)}, {app.term_months}"
                f" months) was withdrawn on {on}; your access to its shared data ends with it."
                " Nothing more to do.",
            ),
        )
    return app


def _notify_step(session: Session, app: Application, action: str) -> None:
    """The enterprise's notice for one step."""
    name = app.product.name
    if action == "accept":
        text = (
            f"融资申请已受理:{name}",
            f"{app.institution}已受理您的申请,审批时限 {app.due_on}。",
        )
        en = (
            f"Financing application accepted: {name}",
            f"{app.institution} accepted your application; it decides by {app.due_on}.",
        )
    elif action == "approve":
        text = (
            f"融资申请已批准:{name}",
            f"{app.institution}批准 {wan(app.approved_amount_fen or 0)},年利率 {pct(app.approved_rate_bp)},放款时限 {app.due_on}。",
        )
        en = (
            f"Financing application approved: {name}",
            f"{app.institution} approved {format_fen_en(app.approved_amount_fen or 0)} at"
            f" {pct(app.approved_rate_bp)} a year, to be paid out by {app.due_on}.",
        )
    elif action == "decline":
        text = (
            f"融资申请未获批准:{name}",
            f"{app.institution}未批准您的申请。理由:{app.decline_reason}",
        )
        en = (
            f"Financing application declined: {name}",
            f"{app.institution} declined your application. Reason given: {app.decline_reason}",
        )
    elif action == "disburse":
        text = (
            f"贷款已发放:{name}",
            f"{app.institution}已于 {app.disbursed_on} 发放 {wan(app.disbursed_amount_fen or 0)}。",
        )
        en = (
            f"Loan paid out: {name}",
            f"{app.institution} paid out {format_fen_en(app.disbursed_amount_fen or 0)}"
            f" on {app.disbursed_on}.",
        )
    else:
        text = (
            f"融资申请已撤回:{name}",
            f"您已撤回向{app.institution}提交的申请,对方不再能查看您的共享数据。",
        )
        en = (
            f"Financing application withdrawn: {name}",
            f"You withdrew your application to {app.institution}; it can no longer see your"
            " shared data.",
        )
    _notify(session, app, action, *text, en)


def revoke_consent(
    session: Session, user: User, app_id: int, fields: Sequence[str] = (), *, on: date | None = None
) -> list[str]:
    """Stop sharing some (or all) fields of an application with its lender; returns those revoked."""
    on = on or today()
    app = get_application(session, user, app_id)
    if user.role != Role.enterprise:
        raise Forbidden("只有申请企业可以撤回授权", "only the applicant may revoke consent")
    active = active_consents(session, app)
    wanted = set(fields) if fields else {c.field for c in active}
    unknown = sorted(wanted - {c.field for c in active})
    if unknown:
        raise InvalidInput(
            f"这些字段未在共享中:{', '.join(unknown)}",
            f"not currently shared: {', '.join(unknown)}",
        )
    now = utcnow()
    revoked = []
    for c in active:
        if c.field in wanted:
            c.revoked_at = now
            c.revoked_by = user.id
            revoked.append(c.field)
    if revoked:
        event = _event(
            session,
            app,
            on,
            kind="consent",
            actor=user,
            note="revoked",
            detail={"revoked": revoked},
        )
        labels = {f.name: f.zh for f in shareable_fields()}
        _notify_lender(
            session,
            app,
            f"consent:{event.id}",
            f"融资申请 #{app.id} 的数据授权已部分撤回",
            f"企业于 {on} 撤回了申请 #{app.id}({app.product.name})以下数据的共享授权:"
            f"{'、'.join(labels.get(f, f) for f in revoked)}。这些数据自即刻起不再向贵机构显示。",
            (
                f"Consent partly revoked on financing application #{app.id}",
                f"On {on} the enterprise stopped sharing these data of application #{app.id}"
                f" ({app.product.name}): {', '.join(label_of(f, 'en') for f in revoked)}."
                " They are no longer shown to you.",
            ),
        )
    return revoked


def events_of(session: Session, app: Application) -> list[ApplicationEvent]:
    """Recorded steps of an application, oldest first."""
    return list(
        session.scalars(
            select(ApplicationEvent)
            .where(ApplicationEvent.application_id == app.id)
            .order_by(ApplicationEvent.id)
        )
    )


# ------------------------------------------------------------------------------- reminders


def remind(session: Session, *, on: date | None = None) -> list[Application]:
    """Notify about open applications past their working-day deadline (once per deadline)."""
    on = on or today()
    open_states = [s.value for s in AppStatus if s not in FINAL_STATUSES]
    overdue = session.scalars(
        select(Application)
        .where(Application.status.in_(open_states), Application.due_on < on)
        .order_by(Application.id)
    ).all()
    out = []
    for app in overdue:
        if app.reminded_for == app.due_on:
            continue
        app.reminded_for = app.due_on
        step = {"submitted": "受理", "accepted": "审批", "approved": "放款"}[app.status]
        step_en = {"submitted": "accept", "accepted": "decide on", "approved": "pay out"}[
            app.status
        ]
        _event(session, app, on, kind="reminder", actor=None, note=f"overdue since {app.due_on}")
        _notify(
            session,
            app,
            f"overdue:{app.status}:{app.due_on}",
            f"融资申请超期提醒:{app.product.name}",
            f"{app.institution}应于 {app.due_on} 前完成{step},现已超期;该申请已在机构工作台标注为超期。",
            (
                f"Financing application overdue: {app.product.name}",
                f"{app.institution} was to {step_en} your application by {app.due_on} and is"
                " late; the application is marked overdue on the lender's workbench.",
            ),
        )
        _notify_lender(
            session,
            app,
            f"overdue:{app.status}:{app.due_on}",
            f"融资申请 #{app.id} 已超期:{app.product.name}",
            f"申请 #{app.id} 应于 {app.due_on} 前完成{step}(按工作日计算),现已超期,请尽快办理。",
            (
                f"Financing application #{app.id} overdue: {app.product.name}",
                f"Application #{app.id} was to be handled ({step_en}) by {app.due_on} (working"
                " days) and is late; please act on it soon.",
            ),
        )
        out.append(app)
    return out
