"""The signals `viz find` ranks units by: one value per character, known after reading it."""

from __future__ import annotations

import pytest

from charrnn_cli import signals
from charrnn_cli.errors import UsageError


def _on(text: str, values: list[float]) -> str:
    """The characters where the signal is 1, as a string (for readable assertions)."""
    assert len(values) == len(text)
    return "".join(c if v else "_" for c, v in zip(text, values, strict=True))


def test_line_position_counts_from_each_newline():
    assert signals.line_position("ab\ncde\n") == [1, 2, 0, 1, 2, 3, 0]


def test_brackets_track_nesting_depth_and_never_go_negative():
    assert signals.brackets("f(a[1]{})) x") == [0, 1, 1, 2, 2, 1, 2, 1, 0, 0, 0, 0]


def test_indent_counts_leading_whitespace_read_so_far():
    assert signals.indent("a\n  b c\n\tx") == [0, 0, 1, 2, 2, 2, 2, 0, 1, 1]


def test_quote_covers_the_opening_quote_and_the_inside_not_the_closing_one():
    text = "x = \"ab\" + 'c'"
    assert _on(text, signals.quote(text)) == "____\"ab____'c_"


def test_quote_escapes_triple_quotes_and_unterminated_lines():
    text = 's = "a\\"b" ; d = """x\ny"""\nt = "open\nu = 1'
    # the newline inside the triple-quoted string is on; the others are off
    want = '____"a\\"b_' + "_" * 7 + '"""x\ny' + "___" + "_" + "____" + '"open' + "_" + "_" * 5
    assert _on(text, signals.quote(text)) == want


def test_an_apostrophe_inside_a_word_opens_nothing_but_a_string_prefix_does():
    text = "I don't know. f'x{y}' rb'z'"
    assert _on(text, signals.quote(text)) == "_______________'x{y}____'z_"


def test_a_regular_expression_marks_its_matches():
    assert _on("def f(): def g", signals.compute(r"def \w", "def f(): def g")) == ("def f____def g")
    with pytest.raises(UsageError, match="neither a built-in signal"):
        signals.compute("(unclosed", "text")


def test_every_built_in_signal_has_one_value_per_character():
    text = "def f(x):\n    return 'a' + \"b\"\n"
    for name in signals.BUILT_IN:
        assert len(signals.compute(name, text)) == len(text)
