"""Statistics of what Wharf runs: process samples now, metrics and events later."""
