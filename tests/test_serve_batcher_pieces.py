"""The batcher's pieces at their edges (found by `make mutate`): each update names its choice,
carries one logprob per character it sends, says how and with how many characters the choice
ended; a stop is cut at its first occurrence, also when several flushes came between pieces."""

from __future__ import annotations

from charrnn_cli.sampling.request import SampleRequest
from charrnn_cli.serve.batcher import _piece, _take
from charrnn_cli.serve.jobs import Job, Update


def _job(stops: tuple[str, ...] = (), stream: bool = True, logprobs: int | None = 1) -> Job:
    return Job(7, None, SampleRequest(length=100), [1], None, stops, logprobs, stream)  # type: ignore[arg-type]


def _add(job: Job, new: str) -> str | None:
    job.lps += [(c, -float(i), {}) for i, c in enumerate(new, len(job.lps))]
    return _take(job, new)


def _chars(update: Update) -> str:
    assert update.logprobs is not None
    return "".join(c for c, _, _ in update.logprobs)


def test_streamed_pieces_carry_their_own_logprobs_and_the_last_says_how_it_ended():
    job = _job(("zz",))
    updates = []
    for new in ["abc", "de", "fzzq"]:
        finish = _add(job, new)
        updates.append(_piece(job, final=finish is not None, finish=finish))
    assert [u.index for u in updates] == [7, 7, 7]
    assert "".join(u.text for u in updates) == "abcdef"
    assert all(_chars(u) == u.text for u in updates)  # one logprob per character sent
    assert [lp for u in updates for _, lp, _ in u.logprobs] == [-float(i) for i in range(6)]
    assert [(u.finish, u.made) for u in updates] == [(None, 0), (None, 0), ("stop", 6)]


def test_a_whole_completion_carries_every_logprob_once_at_its_end():
    job = _job(stream=False)
    _add(job, "abc")
    assert (_piece(job, final=False).text, job.unsent) == ("", "")
    _add(job, "de")
    last = _piece(job, final=True, finish="length")
    assert (last.text, _chars(last), last.finish, last.made) == ("abcde", "abcde", "length", 5)


def test_without_logprobs_an_update_has_none():
    job = _job(logprobs=None)
    _add(job, "abc")
    assert _piece(job, final=True, finish="length").logprobs is None


def test_a_stop_is_cut_at_its_first_occurrence():
    job = _job(("a",))
    assert _add(job, "xayaz") == "stop"
    assert _piece(job, final=True, finish="stop").text == "x"


def test_a_one_character_stop_is_looked_for_in_the_new_text_alone():
    job = _job(("X",))
    sent = []
    for new in ["ab", "cd", "eXf"]:
        finish = _add(job, new)
        sent.append(_piece(job, final=finish is not None, finish=finish).text)
    assert sent == ["ab", "cd", "e"]


def test_a_stop_that_began_before_this_flush_cuts_text_not_yet_sent():
    job = _job(("cd",))
    _add(job, "abc")  # no piece taken between the two flushes
    assert _add(job, "d") == "stop"
    last = _piece(job, final=True, finish="stop")
    assert (last.text, _chars(last), last.made) == ("ab", "ab", 2)
