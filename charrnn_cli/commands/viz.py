"""`charrnn viz`: see what a run sees, after Karpathy, Johnson and Fei-Fei (2015).

`surprise` colours each character by the model's surprisal at it; `find` ranks units by how
well they track a signal (line position, quotes, brackets, indentation or a regex); `cells`
colours the text by single units; `gates` shows how often the gates saturate. Each works in the
terminal, as JSON for scripts, and (surprise, cells) as a self-contained page. The group and its
commands import no torch until one runs, so `charrnn viz --help` stays fast.
"""

from __future__ import annotations

import typer

from charrnn_cli.commands.viz_surprise import surprise
from charrnn_cli.commands.viz_units import cells, find, gates

app = typer.Typer(
    help="See what a run sees: surprisal per character, and units that track the text.",
    no_args_is_help=True,
)
app.command("surprise")(surprise)
app.command("cells")(cells)
app.command("find")(find)
app.command("gates")(gates)
