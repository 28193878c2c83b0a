"""Entry point: `python run.py` serves; `python run.py --help` lists the commands."""
from openalgo_gtt.cli import cli

if __name__ == "__main__":
    cli()
