"""The subcommands, one thin adapter a file. Top-level imports stay torch-free."""
