"""Signals the spend data cannot give: customer sentiment (and, next, AI-answer visibility)."""
