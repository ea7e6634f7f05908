"""Compatibility shims for third-party packages (see each module for why it exists)."""
