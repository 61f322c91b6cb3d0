"""Mystery-call campaigns (grids, planner, scoring, results) — built on top of the core."""
