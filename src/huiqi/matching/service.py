"""Matching services, one module per part; this module gathers their public names.

- versions: publish rules into the database, read the published versions and their rules
- state: stored match state (layouts, packed codes), evaluating a batch and writing its rows
- news: what a batch's changed results tell people (the ChangeSet matching publishes)
- run: matching runs in batches, their progress rows, re-matching what a change touches
- staleness: stored results that no longer reflect their inputs, rule or date
- stored: stored results decoded, counted and listed
- queries: explanations, 我的政策, reverse queries and the rule sandbox

Services take the session first and never commit; the CLI or request boundary commits. Functions
that write results return the rows that are new or changed, so a caller (notify, grants) can act on
them in the same transaction.
"""

from __future__ import annotations

from huiqi.matching.queries import (
    MyPolicies,
    ReverseReport,
    SandboxReport,
    explain,
    load_demo,
    my_policies,
    reverse_query,
    sandbox,
)
from huiqi.matching.run import (
    BATCH_PAIRS,
    PHASES,
    Progress,
    RunReport,
    all_codes,
    finish_run,
    latest_run,
    match,
    on_enterprise_changed,
    rematch_enterprises,
    rematch_parameters,
    rematch_rule,
    rules_reading_parameters,
    run_matching,
    start_run,
)
from huiqi.matching.staleness import (
    Stale,
    refresh_stale,
    stale_results,
)
from huiqi.matching.state import (
    RESULT_CODES,
    Layout,
    pack2,
    unpack2,
)
from huiqi.matching.stored import (
    StoredResult,
    codes_of_rule,
    codes_with_result,
    evaluated_on,
    evaluated_on_many,
    holders,
    result_counts,
    stored_results,
    unknown_count,
)
from huiqi.matching.versions import (
    LoadReport,
    MatchingError,
    base_library,
    latest_version,
    load_rules,
    new_version,
    publish_rule,
    published_rule,
    published_rules,
    published_versions,
    rule_of_version,
)
from huiqi.rules.plan import RESULT_NAMES

__all__ = [
    "BATCH_PAIRS",
    "Layout",
    "LoadReport",
    "MatchingError",
    "MyPolicies",
    "PHASES",
    "Progress",
    "RESULT_CODES",
    "RESULT_NAMES",
    "ReverseReport",
    "RunReport",
    "SandboxReport",
    "Stale",
    "StoredResult",
    "all_codes",
    "base_library",
    "codes_of_rule",
    "codes_with_result",
    "evaluated_on",
    "evaluated_on_many",
    "explain",
    "finish_run",
    "holders",
    "latest_run",
    "latest_version",
    "load_demo",
    "load_rules",
    "match",
    "my_policies",
    "new_version",
    "on_enterprise_changed",
    "pack2",
    "publish_rule",
    "published_rule",
    "published_rules",
    "published_versions",
    "refresh_stale",
    "rematch_enterprises",
    "rematch_parameters",
    "rematch_rule",
    "result_counts",
    "reverse_query",
    "rule_of_version",
    "rules_reading_parameters",
    "run_matching",
    "sandbox",
    "stale_results",
    "start_run",
    "stored_results",
    "unknown_count",
    "unpack2",
]
