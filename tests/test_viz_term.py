"""viz in the terminal: colour only where it belongs, and a plain form that lines marks up under
each character."""

from __future__ import annotations

import io

from charrnn_cli.viz import terminal

TEXT = "ab\n\tc\nd"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_without_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert terminal.use_colour(Tty()) and not terminal.use_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not terminal.use_colour(Tty())
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert not terminal.use_colour(Tty())


def test_plain_surprise_puts_rounded_bits_under_each_character():
    bits = [None, 1.2, 3.6, 0.1, 12.0, 2.0, 4.4]
    out = terminal.surprise_text(TEXT, bits, mean=2.0, colour=False)
    assert "\x1b" not in out
    lines = out.split("\n")
    # "ab" then its marks (b's 1, and the newline's 4 one column past the end); the tab
    # expands to 8 columns with its mark at the start
    assert lines[:6] == ["ab", " 14", "        c", "0       92", "d", "4"]
    assert "mean 2.0000 bits/char over 6 characters" in out


def test_coloured_output_paints_each_character_and_shows_newlines():
    out = terminal.surprise_text("ab\n", [None, 1.0, 9.0], mean=5.0, colour=True)
    assert out.startswith("a\x1b[48;2;") and "↵" in out
    assert out.count(terminal.RESET) == 2 + 9  # two characters, nine legend swatches


def test_plain_cells_map_minus_one_to_plus_one_onto_blocks():
    out = terminal.cells_text("abc", "layer 1 unit 0", [-1.0, 0.0, 1.0], colour=False)
    assert out.split("\n")[:3] == ["layer 1 unit 0", "abc", "▁▅█"]
    coloured = terminal.cells_text("abc", "u", [-1.0, None, 1.0], colour=True)
    assert "\x1b[48;2;70;110;230m" in coloured and "\x1b[48;2;225;60;50m" in coloured
