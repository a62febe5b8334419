"""Special funds (专项资金, 快申快享): calls for applications, applications, review and award."""
