"""Supervisor's XML-RPC interface over Wharf's apps (see `names` for how they are named,
`methods` for what each call does, `server` for the listener)."""
