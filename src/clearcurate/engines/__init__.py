"""Where model work runs when not in this process: a Ray cluster (`ray`). Built by clearcurate.runtime only."""
