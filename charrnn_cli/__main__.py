"""`python -m charrnn_cli` runs the same program as the `charrnn` script."""

from charrnn_cli.cli import run

if __name__ == "__main__":
    run()
