"""The `arnn` command line: the entry point (`main`), option types and one module per command."""
