"""viz: what a trained model's units and gates do, drawn for a terminal, a page or an SVG.

`activations` reads per-layer activations out of the fused layers, `features` computes what a
unit may track in a text (line position, quotes, brackets...), `analysis` scores surprisal, ranks
units and measures gate saturation, and `pages`, `terminal` and `svg` render the results. The
commands that drive them are `commands/viz*.py`.
"""
