"""What a caller asks the sampler for: one frozen `SampleRequest`, checked when it is made.

The CLI builds one from its options, the Python API from its arguments, and both hand it to
`sampling.generate`. Every rule that ties options together lives here, so a request that exists
is one the sampler can serve. Torch-free: a request is made (and refused) before any model is
loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from charrnn_cli.errors import UsageError

Unknown = Literal["error", "skip"]
# below this a temperature is greedy: softmax(logits / T) is then one-hot up to float32 ties,
# and 1 / T would overflow float32 near 1e-38 (inf * 0 = NaN logits)
MIN_TEMPERATURE = 1e-6


@dataclass(frozen=True)
class SampleRequest:
    prompt: str = ""  # text fed first (the CLI's --seed); the samples continue it
    length: int | None = 1000  # characters to generate; None: until the reader stops
    temperature: float = 1.0  # sharper below 1, wilder above; 0 is greedy
    top_k: int | None = None  # draw only from the k likeliest characters
    top_p: float | None = None  # draw from the smallest set with this probability, in (0, 1]
    greedy: bool = False  # always the likeliest character (temperature 0)
    beam_width: int | None = None  # the likeliest continuation by beam search instead
    num: int = 1  # how many samples
    random_seed: int | None = None  # same seed, same text (sample k uses random_seed + k)
    unknown: Unknown = "error"  # prompt characters the run never saw: refuse, or skip them
    echo: bool = True  # each sample (each line, with `lines`) starts with the prompt
    lines: int | None = None  # whole lines instead: this many, one item a line
    novel: bool = False  # with lines: drop lines found in the training corpus
    unique: bool = False  # with lines: no line twice
    min_line_len: int = 1  # with lines: drop shorter lines
    max_line_len: int | None = None  # with lines: drop longer ones [4x the corpus's longest]
    parallel: int | None = None  # streams a step for lines and num [64 on a CPU, 256 on a GPU]
    device: str = "auto"  # where to sample: auto, cpu, cuda, cuda:N or mps

    def __post_init__(self) -> None:
        if self.temperature < 0 or self.temperature != self.temperature:
            raise UsageError("--temperature must be 0 or more")
        if self.top_k is not None and self.top_k < 1:
            raise UsageError("--top-k must be 1 or more")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise UsageError("--top-p must be inside (0, 1]")
        if self.length is not None and self.length < 0:
            raise UsageError("--len must be 0 or more")
        if self.num < 1 or (self.parallel is not None and self.parallel < 1):
            raise UsageError(f"--{'num' if self.num < 1 else 'parallel'} must be 1 or more")
        if self.beam_width is not None and self.length is None:
            raise UsageError("--beam-width needs a finite --len")
        self._check_beam()
        self._check_lines()

    def _check_beam(self) -> None:
        """Beam search draws nothing: the options that shape or seed a draw would be ignored."""
        if self.beam_width is None:
            return
        drawing = {
            "--temperature": self.temperature != 1.0,
            "--greedy": self.greedy,
            "--top-k": self.top_k is not None,
            "--top-p": self.top_p is not None,
            "--random-seed": self.random_seed is not None,
        }
        given = [flag for flag, on in drawing.items() if on]
        if given:
            raise UsageError(
                f"--beam-width finds the likeliest continuation, drawing nothing: {given[0]} "
                "would be ignored, so leave it out"
            )

    def _check_lines(self) -> None:
        if self.lines is None:
            flags = {
                "--novel": self.novel,
                "--unique": self.unique,
                "--min-line-len": self.min_line_len != 1,
                "--max-line-len": self.max_line_len is not None,
            }
            given = [flag for flag, on in flags.items() if on]
            if given:
                raise UsageError(f"{given[0]} needs --lines")
            return
        if self.lines < 1:
            raise UsageError("--lines must be 1 or more")
        if self.num != 1 or self.beam_width is not None:
            other = "--num" if self.num != 1 else "--beam-width"
            raise UsageError(f"--lines does not mix with {other}")
        if self.max_line_len is not None and self.min_line_len > self.max_line_len:
            raise UsageError("--min-line-len is over --max-line-len")

    @property
    def batched(self) -> bool:
        """Many streams a step (`lines`, or `num` > 1 finite samples): matrix products."""
        return self.lines is not None or (
            self.num > 1 and bool(self.length) and self.beam_width is None
        )

    @property
    def effective_temperature(self) -> float:
        """The temperature drawn at: 0 (greedy) when asked, or below MIN_TEMPERATURE."""
        return 0.0 if self.greedy or self.temperature < MIN_TEMPERATURE else self.temperature
