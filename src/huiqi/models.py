"""Import every domain's tables so that Base.metadata is complete (for Alembic and tests)."""

from huiqi.accounts import models as accounts_models
from huiqi.core.db import Base
from huiqi.policy import models as policy_models

__all__ = ["Base", "accounts_models", "policy_models"]
