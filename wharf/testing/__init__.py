"""Test helpers that ship with Wharf: a scripted HTTP upstream to proxy to."""
