"""The batcher's text handling: a stop string found across flushes cuts the text before it,
streamed pieces hold back what a stop string may still claim, and logprobs follow the cut."""

from __future__ import annotations

from charrnn_cli.sampling.request import SampleRequest
from charrnn_cli.serve.jobs import Job
from charrnn_cli.serve.jobs import piece as _piece
from charrnn_cli.serve.jobs import take as _take
from charrnn_cli.serve.stops import Stops


def _job(stops: tuple[str, ...], stream: bool = True) -> Job:
    return Job(0, None, SampleRequest(length=100), [1], None, Stops(stops), 0, stream)  # type: ignore[arg-type]


def _feed(job: Job, pieces: list[str]) -> tuple[list[str], str | None]:
    sent, finish = [], None
    for new in pieces:
        for _ in new:
            job.scores.add(1, -1.0, [], [])
        finish = _take(job, new)
        if finish:
            break
        sent.append(_piece(job, final=False).text)
    last = _piece(job, final=True, finish=finish)
    return [*sent, last.text], finish


def test_a_stop_string_split_across_flushes_cuts_before_it():
    job = _job(("cdef",))
    sent, finish = _feed(job, ["abc", "de", "fgh"])
    assert finish == "stop" and "".join(sent) == "ab" and job.size == 2
    assert sent[0] == "ab" and len(job.scores) == 0  # "abc": "c" held back (a stop may begin)


def test_the_earliest_of_several_stops_wins_and_unstopped_text_all_arrives():
    job = _job(("zz", "b"))
    sent, finish = _feed(job, ["aaa", "azzb"])
    assert finish == "stop" and "".join(sent) == "aaaa"
    job = _job(("@@",))
    sent, finish = _feed(job, ["ab@", "cd"])
    assert finish is None and "".join(sent) == "ab@cd"


def test_a_whole_completion_is_sent_once_at_its_end():
    job = _job(("x",), stream=False)
    sent, finish = _feed(job, ["abc", "dexf"])
    assert sent == ["", "abcde"] and finish == "stop"
