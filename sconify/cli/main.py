"""``sconify``: the umbrella command (image, session, identity, cas, las, dev)."""

from __future__ import annotations

import typer

from sconify.cli import render

app = typer.Typer(
    name="sconify",
    help="Convert native images into attested, encrypted images; run a CAS and LAS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    """Attach the sub-commands; each lives in its own module under ``sconify.cli``."""
    from sconify.cli import cas, dev, identity, image, las, session

    app.add_typer(image.app, name="image")
    app.add_typer(session.app, name="session")
    app.add_typer(identity.app, name="identity")
    app.add_typer(cas.app, name="cas")
    app.add_typer(las.app, name="las")
    app.add_typer(dev.app, name="dev")


_register()


def main() -> None:
    """Console-script entry point."""
    render.run(app)
