"""The command line: argument parsing and output; the only code that calls sys.exit."""
