"""Navigation per role, grouped into menus that fit one line; domains add their entries here."""

from __future__ import annotations

from dataclasses import dataclass, field

STAFF = ("officer", "admin")


@dataclass(frozen=True)
class NavItem:
    """One link in the top navigation, shown to the listed roles ('public' = everyone)."""

    path: str
    zh: str
    en: str
    roles: tuple[str, ...]
    group: str = ""


@dataclass(frozen=True)
class NavGroup:
    """A menu of the top navigation: a single link, or a labelled list of links."""

    key: str
    zh: str
    en: str
    items: list[NavItem] = field(default_factory=list)

    @property
    def path(self) -> str:
        """Where the menu's own label leads (its first entry)."""
        return self.items[0].path


GROUPS: dict[str, tuple[str, str]] = {
    "home": ("首页", "Home"),
    "policy": ("政策", "Policies"),
    "mine": ("我的政策", "My policies"),
    "enterprise": ("企业", "Enterprises"),
    "grants": ("免申即享", "No-application benefits"),
    "finance": ("融资", "Financing"),
    "funds": ("快申快享", "Calls for applications"),
    "messages": ("消息", "Messages"),
    "figures": ("统计", "Figures"),
    "system": ("系统", "System"),
}

NAV: list[NavItem] = [
    NavItem("/", "首页", "Home", ("public",), "home"),
    NavItem("/policy", "政策库", "Policies", ("public",), "policy"),
    NavItem("/policy/upload", "上传政策", "Upload policy", STAFF, "policy"),
    NavItem("/rules", "政策规则", "Rules", STAFF, "policy"),
    NavItem("/matching/mine", "我的政策", "My policies", ("enterprise",), "mine"),
    NavItem("/enterprise/mine", "企业信息", "Our record", ("enterprise",), "enterprise"),
    NavItem("/enterprise", "企业库", "Enterprises", STAFF, "enterprise"),
    NavItem("/enterprise/import", "批量导入", "Bulk import", STAFF, "enterprise"),
    NavItem("/grants/mine", "我的免申即享", "My benefits", ("enterprise",), "grants"),
    NavItem("/grants", "免申即享审核", "Grant review", STAFF, "grants"),
    NavItem("/grants/disbursements", "拨付清单", "Disbursement", STAFF, "grants"),
    NavItem("/grants/ledger", "台账", "Ledger", STAFF, "grants"),
    NavItem("/grants/public", "兑现公示", "Benefits notice", ("public",), "grants"),
    NavItem("/funds/calls", "申报通知", "Calls for applications", ("public",), "funds"),
    NavItem("/funds/mine", "我的申报", "My applications", ("enterprise",), "funds"),
    NavItem("/funds/review", "申报评审", "Application review", STAFF, "funds"),
    NavItem("/funds/performance/mine", "绩效报告", "Performance reports", ("enterprise",), "funds"),
    NavItem("/funds/dashboard", "专项资金统计", "Funds dashboard", STAFF, "funds"),
    NavItem("/funds/publicity", "立项公示", "Awards on publicity", ("public",), "funds"),
    NavItem(
        "/finance", "融资对接", "Financing", ("enterprise", "bank", "officer", "admin"), "finance"
    ),
    NavItem("/finance/stats", "融资统计", "Financing statistics", STAFF, "finance"),
    NavItem("/notify/inbox", "消息", "Inbox", ("enterprise", "bank"), "messages"),
    NavItem("/notify/settings", "推送设置", "Push settings", ("enterprise",), "messages"),
    NavItem("/cockpit", "驾驶舱", "Cockpit", STAFF, "figures"),
    NavItem("/notify/dashboard", "推送统计", "Push dashboard", STAFF, "figures"),
    NavItem("/admin/users", "用户管理", "Users", ("admin",), "system"),
    NavItem("/admin/audit", "安全审计", "Audit log", ("admin",), "system"),
    NavItem("/account", "我的账户", "My account", ("admin", "officer", "enterprise", "bank"), ""),
]


def _visible(item: NavItem, role: str | None) -> bool:
    return "public" in item.roles or bool(role and role in item.roles)


def nav_for(role: str | None) -> list[NavItem]:
    """The navigation entries a visitor with this role sees."""
    return [item for item in NAV if _visible(item, role)]


def menus_for(role: str | None) -> list[NavGroup]:
    """The visitor's entries grouped into menus, in the order of GROUPS (the account link is
    in the header's session area, not a menu)."""
    menus: dict[str, NavGroup] = {}
    for item in nav_for(role):
        if not item.group:
            continue
        if item.group not in menus:
            zh, en = GROUPS.get(item.group, (item.zh, item.en))
            menus[item.group] = NavGroup(item.group, zh, en)
        menus[item.group].items.append(item)
    return [menus[k] for k in GROUPS if k in menus]


def breadcrumbs(role: str | None, path: str) -> list[tuple[str, str, str]]:
    """(zh, en, href) from the home page down to the entry that best matches the path."""
    best: NavItem | None = None
    for item in nav_for(role):
        if item.path == "/":
            continue
        if path == item.path or path.startswith(item.path.rstrip("/") + "/"):
            if best is None or len(item.path) > len(best.path):
                best = item
    crumbs = [("首页", "Home", "/")]
    if best is not None:
        zh, en = GROUPS.get(best.group, ("", ""))
        if zh and zh != best.zh:
            crumbs.append((zh, en, ""))
        crumbs.append((best.zh, best.en, best.path))
    return crumbs
