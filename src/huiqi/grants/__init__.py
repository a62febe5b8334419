"""No-application benefits (免申即享 / 不来即享, seed art. (三十)): grants, review, disbursement."""
