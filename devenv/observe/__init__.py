"""Seeing what the stack does: logs now; traces and event views later."""
