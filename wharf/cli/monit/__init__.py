"""`wharf monit`: a live full-screen monitor, like `pm2 monit` (model, view, feeds, run).

Only this package imports rich, and only when `wharf monit` runs: the daemon never loads it."""
