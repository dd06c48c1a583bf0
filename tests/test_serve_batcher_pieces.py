"""The scheduler's pieces at their edges (found by `make mutate`): each update names its choice,
says how and with how many characters the choice ended, a whole completion posts once at its
end; a stop is cut where it first completes, also when several flushes came between pieces.
(One logprob per character sent: tests/test_serve_limits.py.)"""

from __future__ import annotations

from charrnn_cli.sampling.request import SampleRequest
from charrnn_cli.serve.jobs import Job, piece, take
from charrnn_cli.serve.stops import Stops


def _job(stops: tuple[str, ...] = (), stream: bool = True) -> Job:
    return Job(7, None, SampleRequest(length=100), [1], None, Stops(stops), None, stream)  # type: ignore[arg-type]


def test_streamed_pieces_name_their_choice_and_the_last_says_how_it_ended():
    job = _job(("zz",))
    updates = []
    for new in ["abc", "de", "fzzq"]:
        finish = take(job, new)
        updates.append(piece(job, final=finish is not None, finish=finish))
    assert [u.index for u in updates] == [7, 7, 7]
    assert "".join(u.text for u in updates) == "abcdef"
    assert [(u.finish, u.made) for u in updates] == [(None, 0), (None, 0), ("stop", 6)]
    assert all(u.logprobs is None for u in updates)  # none asked for


def test_a_whole_completion_posts_once_at_its_end():
    job = _job(stream=False)
    take(job, "abc")
    assert piece(job, final=False).text == ""
    take(job, "de")
    last = piece(job, final=True, finish="length")
    assert (last.text, last.finish, last.made) == ("abcde", "length", 5)


def test_a_stop_is_cut_at_its_first_occurrence():
    job = _job(("a",))
    assert take(job, "xayaz") == "stop"
    assert piece(job, final=True, finish="stop").text == "x"


def test_a_one_character_stop_holds_nothing_back():
    job = _job(("X",))
    sent = []
    for new in ["ab", "cd", "eXf"]:
        finish = take(job, new)
        sent.append(piece(job, final=finish is not None, finish=finish).text)
    assert sent == ["ab", "cd", "e"]


def test_a_stop_that_began_before_this_flush_cuts_text_not_yet_sent():
    job = _job(("cd",))
    take(job, "abc")  # no piece taken between the two flushes
    assert take(job, "d") == "stop"
    last = piece(job, final=True, finish="stop")
    assert (last.text, last.made) == ("ab", 2)
