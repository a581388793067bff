"""Organizations, their issue areas, aliases and interactions; the filter language over them."""
