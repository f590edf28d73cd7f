"""Lock-manager module: lock config, lease naming, lease reading, status, cleanup. Never imports Textual."""
