"""huiqi (惠企): SME support policies turned into working services."""

__version__ = "0.1.0"
