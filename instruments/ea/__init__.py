"""EA Elektro-Automatik instruments."""
