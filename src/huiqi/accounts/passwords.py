"""The password policy: long enough, not the username, not one of the most common passwords."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

MIN_LENGTH = 10


class WeakPassword(ValueError):
    """A password the policy refuses; carries a Chinese and an English message."""

    def __init__(self, zh: str, en: str) -> None:
        """Keep both messages; str() gives the Chinese one first."""
        super().__init__(f"{zh} / {en}")
        self.zh = zh
        self.en = en


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of the 10,000 most common passwords (see data/README.md for its source)."""
    text = (
        resources.files("huiqi.accounts")
        .joinpath("data/common-passwords.txt")
        .read_text(encoding="utf-8")
    )
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def check_password(password: str, username: str) -> None:
    """Refuse a password that is short, contains the username or is commonly used."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(
            f"密码至少需要 {MIN_LENGTH} 个字符",
            f"the password must be at least {MIN_LENGTH} characters long",
        )
    name = username.strip().lower()
    if name and name in password.lower():
        raise WeakPassword("密码不能包含用户名", "the password must not contain the username")
    if password.lower() in common_passwords():
        raise WeakPassword(
            "该密码属于最常见的一万个密码之一,容易被猜中,请换一个",
            "the password is one of the 10,000 most common passwords; choose another",
        )
