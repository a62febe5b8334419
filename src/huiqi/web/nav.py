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
    NavItem("/enterprise", "企业库", "Enterprises", ("officer", "admin")),
    NavItem("/account", "我的账户", "My account", ("admin", "officer", "enterprise", "bank")),
]


def nav_for(role: str | None) -> list[NavItem]:
    """The navigation entries a visitor with this role sees."""
    return [item for item in NAV if "public" in item.roles or (role and role in item.roles)]
