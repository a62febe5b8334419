"""Special funds and calls for applications (快申快享): review, award, performance."""
