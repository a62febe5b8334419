"""Enterprise registry: validated profiles, statutory size classes, bulk import and a demo population."""
