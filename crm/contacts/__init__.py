"""People at organizations."""
