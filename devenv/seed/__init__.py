"""Bringing data to a known state: SQL migrations applied once in order, idempotent seed data,
seed S3 objects, and a reset back to the seeded state."""
