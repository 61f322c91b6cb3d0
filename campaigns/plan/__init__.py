"""Planning mystery calls (pure, seeded): candidate slots, balance over weeks and
half-days, placement, the misfire rule, and the plan's formats."""
