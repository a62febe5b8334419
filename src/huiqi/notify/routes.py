"""Notification pages and API: inbox (an enterprise's messages, or a bank user's or officer's
own), enterprise settings, unsubscribe and open links (no log-in), officers' delivery status and
push dashboard."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from huiqi.accounts.models import Role, User
from huiqi.core import clock
from huiqi.core.bounds import Int64
from huiqi.notify import service
from huiqi.notify.models import (
    CHANNEL_LABELS,
    OUTBOX_LABELS,
    PUSH_CHANNELS,
    TOPIC_LABELS,
    Notification,
    OutboxStatus,
)
from huiqi.notify.schemas import SettingsError, SettingsInput, fmt_hhmm
from huiqi.reports import funnel as stats
from huiqi.web.deps import (
    EnterpriseUser,
    OfficerUser,
    OptionalUser,
    SessionDep,
    page_user,
    reading_session,
    render,
    require_roles,
)
from huiqi.web.i18n import request_lang
from huiqi.web.kept import kept_page, remembered_page

router = APIRouter()
# Every role has an inbox: an enterprise's messages, or a bank user's or officer's own.
INBOX_ROLES = (Role.enterprise, Role.bank, Role.officer, Role.admin)
INBOX_TEMPLATE = "notify/inbox.html"
InboxUser = Annotated[User, Depends(require_roles(*INBOX_ROLES))]


def _own(session: Session, user: User, notification_id: Int64) -> Notification:
    """A notification of the user's inbox; any other id is 'not found'."""
    note = session.get(Notification, notification_id)
    if note is None or not service.can_read(user, note):
        raise HTTPException(status_code=404, detail="not found")
    return note


@router.get("/notify/inbox", include_in_schema=False)
async def inbox_page(request: Request, unread: bool = False) -> Response:
    """The inbox: an enterprise's messages, or a bank user's or officer's own.

    The page is kept per user and inbox stamp (huiqi.web.kept): while both are remembered a
    reload is answered on the event loop (an aged one is read again in the background);
    otherwise the user and one small row are read in one trip to a worker thread.
    """
    page = remembered_page(
        request,
        INBOX_TEMPLATE,
        admits=_reads_inbox,
        stamp_key=_inbox_stamp_key,
        read_stamp=service.inbox_stamp,
        options=unread,
    )
    if page is not None:
        return page
    return await run_in_threadpool(_inbox_page, request, unread)


def _reads_inbox(user: User) -> bool:
    return user.role in INBOX_ROLES


def _inbox_stamp_key(user: User) -> tuple[str, str]:
    """Whose inbox a user reads: their enterprise's, or their own."""
    if user.role == Role.enterprise:
        return "inbox", f"enterprise:{user.credit_code or ''}"
    return "inbox", f"user:{user.id}"


def _inbox_page(request: Request, unread: bool) -> Response:
    with reading_session() as session:
        user = page_user(request, session, *INBOX_ROLES)
        return kept_page(
            request,
            INBOX_TEMPLATE,
            _inbox_stamp_key(user),
            service.inbox_stamp(session, user),
            lambda: {
                "notes": service.inbox_for(session, user, unread_only=unread),
                "unread": service.unread_count_for(session, user),
                "only_unread": unread,
                "topics": TOPIC_LABELS,
                "is_enterprise": user.role == Role.enterprise,
            },
            options=unread,
        )


@router.get("/notify/inbox/{notification_id:int}", include_in_schema=False)
def notification_page(
    request: Request,
    notification_id: Int64,
    user: InboxUser,
    session: SessionDep,
) -> Response:
    """One notification; opening it records a read receipt."""
    note = _own(session, user, notification_id)
    service.mark_read(session, note, via="inbox", user_id=user.id)
    return render(request, "notify/detail.html", note=note, topics=TOPIC_LABELS)


@router.post("/notify/inbox/{notification_id:int}/unread", include_in_schema=False)
def mark_unread(
    notification_id: Int64,
    user: InboxUser,
    session: SessionDep,
) -> Response:
    """Show a notification as unread again."""
    service.mark_unread(session, _own(session, user, notification_id))
    return RedirectResponse("/notify/inbox", status_code=303)


def _beijing(moment: datetime) -> str:
    """A stored moment as Beijing time (consent is dated as the enterprise sees its day)."""
    return clock.in_beijing(moment).strftime("%Y-%m-%d %H:%M")


def _settings_page(
    request: Request,
    session: Session,
    code: str,
    *,
    error: str | None = None,
    saved: bool = False,
    form: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    sub = service.get_subscription(session, code)
    history = service.consent_history(session, code, limit=50)
    return render(
        request,
        "notify/settings.html",
        status_code=status,
        sub=sub,
        form=form,
        error=error,
        saved=saved,
        topics=TOPIC_LABELS,
        history=history,
        channels=CHANNEL_LABELS,
        fmt_hhmm=fmt_hhmm,
        beijing=_beijing,
    )


@router.get("/notify/settings", include_in_schema=False)
def settings_page(
    request: Request,
    user: EnterpriseUser,
    session: SessionDep,
) -> Response:
    """Channels, consent, topics, quiet hours and the daily cap."""
    return _settings_page(
        request, session, str(user.credit_code), saved="saved" in request.query_params
    )


@router.post("/notify/settings", include_in_schema=False)
async def save_settings(
    request: Request,
    user: EnterpriseUser,
    session: SessionDep,
) -> Response:
    """Store the settings; a bad address is refused with the field named."""
    form = await request.form()
    values = {
        k: str(form.get(k, ""))
        for k in ("email", "phone", "webhook_url", "quiet_start", "quiet_end", "daily_cap")
    }
    try:
        data = SettingsInput.parse(
            **values,
            consent_email=form.get("consent_email") == "on",
            consent_sms=form.get("consent_sms") == "on",
            consent_webhook=form.get("consent_webhook") == "on",
            muted_topics=[str(t) for t in form.getlist("muted_topics")],
            allow_private_webhooks=request.app.state.settings.webhook_allow_private,
        )
    except SettingsError as exc:
        return _settings_page(
            request,
            session,
            str(user.credit_code),
            error=exc.localized(request_lang(request)),
            form=dict(form),
            status=422,
        )
    service.save_settings(session, str(user.credit_code), data, actor=user.username)
    return RedirectResponse("/notify/settings?saved=1", status_code=303)


@router.post("/notify/settings/rotate-secret", include_in_schema=False)
def rotate_secret(user: EnterpriseUser, session: SessionDep) -> Response:
    """Issue a new webhook signing secret."""
    service.rotate_webhook_secret(session, str(user.credit_code))
    return RedirectResponse("/notify/settings?saved=1", status_code=303)


def _unsubscribe_target(request: Request, token: str) -> tuple[str, str]:
    return service.read_unsubscribe_token(request.app.state.settings.secret_key, token)


@router.get("/notify/unsubscribe/{token}", include_in_schema=False)
def unsubscribe_page(request: Request, token: str) -> Response:
    """Confirm an unsubscribe (a GET never changes anything: mail scanners follow links)."""
    code, channel = _unsubscribe_target(request, token)
    return render(
        request,
        "notify/unsubscribe.html",
        code=code,
        channel=channel,
        token=token,
        channels=CHANNEL_LABELS,
        done=None,
    )


@router.post("/notify/unsubscribe/{token}", include_in_schema=False)
def unsubscribe(
    request: Request,
    token: str,
    session: SessionDep,
    _viewer: OptionalUser,
) -> Response:
    """Withdraw consent for the channel in the signed link; works without logging in."""
    # The visitor (if logged in) is resolved through this request's session: a second session
    # would wait for this one's SQLite write lock.
    code, channel = _unsubscribe_target(request, token)
    done = service.unsubscribe(session, code, channel)
    return render(
        request,
        "notify/unsubscribe.html",
        code=code,
        channel=channel,
        token=token,
        channels=CHANNEL_LABELS,
        done=done,
    )


@router.get("/notify/open/{token}", include_in_schema=False)
def open_link(request: Request, token: str, session: SessionDep) -> Response:
    """The link in a pushed message: record that it was read, then show it."""
    nid, channel = service.read_open_token(request.app.state.settings.secret_key, token)
    note = session.get(Notification, nid)
    if note is None:
        raise HTTPException(status_code=404, detail="not found")
    service.mark_read(session, note, via=channel)
    return RedirectResponse(f"/notify/inbox/{nid}", status_code=303)


@router.get("/notify/outbox", include_in_schema=False)
def outbox_page(
    request: Request,
    user: OfficerUser,
    session: SessionDep,
    status: str = "",
    channel: str = "",
    credit_code: str = "",
) -> Response:
    """Delivery status of every pushed message, for officers (of their region's enterprises)."""
    return render(
        request,
        "notify/outbox.html",
        rows=service.outbox_rows(
            session,
            status=status or None,
            channel=channel or None,
            credit_code=credit_code or None,
            within=user.region_prefix,
        ),
        counts=service.status_counts(session, within=user.region_prefix),
        labels=OUTBOX_LABELS,
        channels=CHANNEL_LABELS,
        push_channels=PUSH_CHANNELS,
        statuses=list(OutboxStatus),
        f_status=status,
        f_channel=channel,
        f_code=credit_code,
    )


@router.post("/notify/outbox/{outbox_id:int}/retry", include_in_schema=False)
def retry_dead(outbox_id: Int64, user: OfficerUser, session: SessionDep) -> Response:
    """Give a dead-lettered message another round of attempts."""
    service.requeue_dead(session, outbox_id, by=user)
    return RedirectResponse("/notify/outbox?status=pending", status_code=303)


@router.get("/notify/dashboard", include_in_schema=False)
def dashboard(
    request: Request,
    user: OfficerUser,
    session: SessionDep,
    rule: str = "",
) -> Response:
    """The push funnel per policy and channel, charted with ECharts."""
    rows = stats.funnel(session, within=user.region_prefix)
    rule_ids = sorted({r.rule_id for r in rows})
    selected = rule if rule in rule_ids else (rule_ids[0] if rule_ids else "")
    chosen = [r for r in rows if r.rule_id == selected]
    chart = {
        "stages": [stats.STAGE_LABELS[s][0] for s in stats.STAGES],
        "funnel": next(
            ([r.stage(s) for s in stats.STAGES] for r in chosen if r.channel == "all"), []
        ),
        "channels": [
            {
                "name": CHANNEL_LABELS.get(r.channel, (r.channel,))[0],
                "values": [r.stage(s) for s in stats.STAGES],
            }
            for r in chosen
            if r.channel != "all"
        ],
    }
    return render(
        request,
        "notify/dashboard.html",
        rows=rows,
        rule_ids=rule_ids,
        selected=selected,
        chart=chart,
        stages=stats.STAGES,
        stage_labels=stats.STAGE_LABELS,
        channels=CHANNEL_LABELS,
    )


@router.get("/notify/dashboard.csv", include_in_schema=False)
def dashboard_csv(user: OfficerUser, session: SessionDep) -> Response:
    """The funnel as CSV."""
    return Response(
        stats.funnel_csv(stats.funnel(session, within=user.region_prefix)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="push-funnel.csv"'},
    )


@router.get("/api/v1/notify/inbox")
def api_inbox(
    request: Request,
    user: InboxUser,
    session: SessionDep,
    unread: bool = False,
) -> list[dict[str, Any]]:
    """The user's inbox (newest first): its enterprise's, or a bank user's or officer's own;
    subject and body in the request's language (English falls back to Chinese on older rows)."""
    lang = request_lang(request)
    return [
        {
            "id": n.id,
            "topic": n.topic,
            "subject": n.subject_in(lang),
            "body": n.body_in(lang),
            "link": n.link,
            "rule_id": n.rule_id,
            "rule_version": n.rule_version,
            "deadline": n.deadline.isoformat() if n.deadline else None,
            "created_at": clock.aware(n.created_at).isoformat(),
            "read_at": clock.aware(n.read_at).isoformat() if n.read_at else None,
        }
        for n in service.inbox_for(session, user, unread_only=unread)
    ]


@router.get("/api/v1/notify/outbox")
def api_outbox(
    user: OfficerUser,
    session: SessionDep,
    status: str | None = None,
    channel: str | None = None,
) -> list[dict[str, Any]]:
    """Delivery status of pushed messages (officers: of their region's enterprises)."""
    rows = service.outbox_rows(session, status=status, channel=channel, within=user.region_prefix)
    return [service.describe(r) for r in rows]


@router.get("/api/v1/notify/funnel")
def api_funnel(user: OfficerUser, session: SessionDep) -> list[dict[str, Any]]:
    """Push funnel per policy and channel."""
    return [r.__dict__ for r in stats.funnel(session, within=user.region_prefix)]
