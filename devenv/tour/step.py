"""A step of the tour: what a newcomer reads, and what devenv observed there."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Step:
    title: str
    explanation: str  # how devenv wires this part, from the config
    facts: list[tuple[str, str]] = field(default_factory=list)  # (label, value) observed or declared
    say: str | None = None  # the team's own sentence (tour.steps[].say)
