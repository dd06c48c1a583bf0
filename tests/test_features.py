"""The signals `viz find` ranks units by: one value per character, known after reading it."""

from __future__ import annotations

import pytest

from charrnn_cli.errors import UsageError
from charrnn_cli.viz import features


def _on(text: str, values: list[float]) -> str:
    """The characters where the signal is 1, as a string (for readable assertions)."""
    assert len(values) == len(text)
    return "".join(c if v else "_" for c, v in zip(text, values, strict=True))


def test_line_position_counts_from_each_newline():
    assert features.line_position("ab\ncde\n") == [1, 2, 0, 1, 2, 3, 0]


def test_brackets_track_nesting_depth_and_never_go_negative():
    assert features.brackets("f(a[1]{})) x") == [0, 1, 1, 2, 2, 1, 2, 1, 0, 0, 0, 0]


def test_indent_counts_leading_whitespace_read_so_far():
    assert features.indent("a\n  b c\n\tx") == [0, 0, 1, 2, 2, 2, 2, 0, 1, 1]


def test_quote_covers_a_one_line_span_with_its_quote_marks():
    text = 'x = "ab" + \'c\' + ""'
    assert _on(text, features.quote(text)) == '____"ab"___\'c\'___""'


def test_quote_honours_escapes_and_leaves_out_blocks_and_strays():
    text = 's = "a\\"b" ; d = """x\n\'y\'\n""" + "open\nu = \'v\''
    # the docstring block (12 characters, quotes inside it too) and the stray "open are off
    want = '____"a\\"b"' + "_" * 7 + "_" * 12 + "_" * 3 + "_" * 6 + "_" * 4 + "'v'"
    assert _on(text, features.quote(text)) == want


def test_an_apostrophe_inside_a_word_opens_nothing_but_a_string_prefix_does():
    text = "I don't know. f'x{y}' rb'z'"
    assert _on(text, features.quote(text)) == "_______________'x{y}'___'z'"


def test_a_regular_expression_marks_its_matches():
    assert _on("def f(): def g", features.compute(r"def \w", "def f(): def g")) == (
        "def f____def g"
    )
    with pytest.raises(UsageError, match="neither a built-in signal"):
        features.compute("(unclosed", "text")


def test_every_built_in_signal_has_one_value_per_character():
    text = "def f(x):\n    return 'a' + \"b\"\n"
    for name in features.BUILT_IN:
        assert len(features.compute(name, text)) == len(text)
