"""Navigation entries per role; domains add theirs here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NavItem:
    """One link in the top navigation, shown to the listed roles ('public' = everyone)."""

    path: str
    zh: str
    en: str
    roles: tuple[str, ...]


NAV: list[NavItem] = [
    NavItem("/", "首页", "Home", ("public",)),
    NavItem("/policy", "政策库", "Policies", ("public",)),
    NavItem("/policy/upload", "上传政策", "Upload policy", ("officer", "admin")),
    NavItem("/admin/users", "用户管理", "Users", ("admin",)),
    NavItem("/admin/audit", "安全审计", "Audit log", ("admin",)),
    NavItem("/enterprise/mine", "企业信息", "Our record", ("enterprise",)),
    NavItem("/matching/mine", "我的政策", "My policies", ("enterprise",)),
    NavItem("/rules", "政策规则", "Rules", ("officer", "admin")),
    NavItem("/enterprise", "企业库", "Enterprises", ("officer", "admin")),
    NavItem("/finance", "融资对接", "Financing", ("enterprise", "bank", "officer", "admin")),
    NavItem("/finance/stats", "融资统计", "Financing statistics", ("officer", "admin")),
    NavItem("/notify/inbox", "消息", "Inbox", ("enterprise", "bank")),
    NavItem("/grants/mine", "免申即享", "My benefits", ("enterprise",)),
    NavItem("/grants", "免申即享审核", "Grant review", ("officer", "admin")),
    NavItem("/notify/dashboard", "推送统计", "Push dashboard", ("officer", "admin")),
    NavItem("/grants/public", "兑现公示", "Benefits notice", ("public",)),
    NavItem("/account", "我的账户", "My account", ("admin", "officer", "enterprise", "bank")),
]


def nav_for(role: str | None) -> list[NavItem]:
    """The navigation entries a visitor with this role sees."""
    return [item for item in NAV if "public" in item.roles or (role and role in item.roles)]
