"""Policy interpretations (解读): an officer's explanation of a policy or an article, and how to claim.

An interpretation is a text, a link to a published 解读 (a department's page or a PDF), or both,
with an optional "how to claim" (申报/享受方式). It is attached to a policy, or to one of its
articles by number, so it survives new versions of the document. Adding or removing one moves the
policy's ``updated_at`` (``huiqi.policy.models.touch_changed_policies``), which invalidates the
cached policy page. Services take the session first and never commit.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.core.errors import Invalid, NotFound
from huiqi.policy import repository
from huiqi.policy.models import Policy, PolicyArticle, PolicyInterpretation

TITLE_MAX = 300
URL_MAX = 500
TEXT_MAX = 20_000


class InterpretationError(Invalid):
    """An interpretation that cannot be saved, with the field at fault."""


def _check_url(url: str) -> str | None:
    """A link people can open: http(s) with a host, or a path on this site."""
    url = url.strip()
    if not url:
        return None
    if len(url) > URL_MAX:
        raise InterpretationError(
            f"链接不能超过 {URL_MAX} 个字符",
            f"the link may have at most {URL_MAX} characters",
            field="url",
        )
    parts = urlsplit(url)
    if (parts.scheme in ("http", "https") and parts.netloc) or (
        not parts.scheme and url.startswith("/") and not url.startswith("//")
    ):
        return url
    raise InterpretationError(
        "链接须以 http:// 或 https:// 开头(或为本站以 / 开头的地址)",
        "the link must start with http:// or https:// (or be a path on this site starting with /)",
        field="url",
    )


def add(
    session: Session,
    policy: Policy,
    *,
    article_number: int | None,
    title: str,
    body: str = "",
    url: str = "",
    how_to_claim: str = "",
    user_id: int | None = None,
) -> PolicyInterpretation:
    """Attach an interpretation to a policy or one of its articles (a text or a link is required)."""
    title = title.strip()
    body = body.replace("\r\n", "\n").strip()
    how_to_claim = how_to_claim.replace("\r\n", "\n").strip()
    if not title:
        raise InterpretationError(
            "请填写解读标题", "give the interpretation a title", field="title"
        )
    if len(title) > TITLE_MAX:
        raise InterpretationError(
            f"标题不能超过 {TITLE_MAX} 个字符",
            f"the title may have at most {TITLE_MAX} characters",
            field="title",
        )
    for name, value in (("body", body), ("how_to_claim", how_to_claim)):
        if len(value) > TEXT_MAX:
            raise InterpretationError(
                f"内容不能超过 {TEXT_MAX} 个字符",
                f"the text may have at most {TEXT_MAX} characters",
                field=name,
            )
    link = _check_url(url)
    if not body and link is None:
        raise InterpretationError(
            "请填写解读内容或解读原文链接(至少一项)",
            "give the interpretation's text or a link to it (at least one)",
            field="body",
        )
    if article_number is not None and (
        repository.article_by_number(session, policy.id, article_number) is None
    ):
        raise InterpretationError(
            "该政策没有所选条款", "the policy has no such article", field="article_number"
        )
    item = PolicyInterpretation(
        policy=policy,
        article_number=article_number,
        title=title,
        body=body,
        url=link,
        how_to_claim=how_to_claim,
        created_by=user_id,
    )
    session.add(item)
    session.flush()
    return item


def remove(session: Session, policy: Policy, interpretation_id: int) -> None:
    """Take an interpretation off a policy."""
    item = session.get(PolicyInterpretation, interpretation_id)
    if item is None or item.policy_id != policy.id:
        raise NotFound("没有这条解读", "no such interpretation")
    policy.interpretations.remove(item)
    session.flush()


def for_article(
    session: Session, policy_id: int, article_number: int
) -> list[PolicyInterpretation]:
    """The interpretations that explain an article: its own first, then the whole policy's."""
    rows = session.scalars(
        select(PolicyInterpretation)
        .where(
            PolicyInterpretation.policy_id == policy_id,
            (PolicyInterpretation.article_number == article_number)
            | PolicyInterpretation.article_number.is_(None),
        )
        .order_by(PolicyInterpretation.article_number.is_(None), PolicyInterpretation.id)
    ).all()
    return list(rows)


def article_choices(policy: Policy) -> list[PolicyArticle]:
    """The articles an interpretation can be attached to, in document order."""
    return list(policy.articles)
