"""Fixtures for the policy tests: the seed, the reference regulations and sample renditions."""

from __future__ import annotations

from pathlib import Path

import pytest

from huiqi.policy.ingest import ingest_file
from huiqi.policy.parser import parse_source
from huiqi.policy.schemas import ParsedDocument
from tests.conftest import TEST_DATA, seed_path

REPO = Path(__file__).resolve().parents[2]
SEED = seed_path()
REFERENCE = TEST_DATA / "reference"
FIXTURES = REPO / "tests" / "fixtures" / "policy"


@pytest.fixture(scope="session")
def seed_doc() -> ParsedDocument:
    """The seed document, parsed."""
    return parse_source(ingest_file(SEED))


def parse_path(path: Path) -> ParsedDocument:
    """Ingest and parse one file."""
    return parse_source(ingest_file(path))
