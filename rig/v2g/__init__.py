"""The ISO 15118-20 stack. Imports nothing else of the project (see DESIGN.md, Folders)."""
