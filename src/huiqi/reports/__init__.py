"""Reports that read several domains at once (the push funnel); no domain depends on them."""
