"""Import every domain's tables so that Base.metadata is complete (for Alembic and tests)."""

from huiqi.accounts import models as accounts_models
from huiqi.core.db import Base
from huiqi.enterprise import models as enterprise_models
from huiqi.finance import models as finance_models
from huiqi.funds import models as funds_models
from huiqi.grants import models as grants_models
from huiqi.matching import models as matching_models
from huiqi.notify import models as notify_models
from huiqi.policy import models as policy_models

__all__ = [
    "Base",
    "accounts_models",
    "enterprise_models",
    "finance_models",
    "funds_models",
    "grants_models",
    "matching_models",
    "notify_models",
    "policy_models",
]
