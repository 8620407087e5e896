"""`python -m devenv` is the `devenv` command."""

from .cli import main

main()
