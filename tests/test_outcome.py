"""An unfinished render's result is a value (Outcome, Partial) carried by one exception type of the cause's kind."""

import errno

import pytest

from dreamreel import interrupts
from dreamreel.errors import DreamError
from dreamreel.outcome import Outcome, Partial, Unfinished, outcome_of, reraise, unfinished


@pytest.mark.parametrize("cause", [KeyboardInterrupt(), interrupts.Terminated(), DreamError("bad mask", "use a PNG"),
                                   OSError(errno.ENOSPC, "No space left on device", "out.mp4")])
def test_the_carrier_is_still_an_instance_of_its_cause_and_holds_the_outcome(cause, tmp_path):
    part = Partial(tmp_path / "z.mp4", 3, 8, 3)
    exc = unfinished(cause, partial=part)
    assert isinstance(exc, Unfinished) and isinstance(exc, type(cause)) and exc is not cause
    assert outcome_of(exc) == Outcome(partial=part)
    assert str(exc) == str(cause)
    if isinstance(cause, KeyboardInterrupt):
        assert interrupts.exit_code(exc) == interrupts.exit_code(cause)  # 143 stays 143, 130 stays 130
    if isinstance(cause, DreamError):
        assert (exc.message, exc.hint, exc.exit_code) == ("bad mask", "use a PNG", 2)
    if isinstance(cause, OSError):
        assert (exc.errno, exc.strerror, exc.filename) == (errno.ENOSPC, "No space left on device", "out.mp4")


def test_an_outcome_grows_on_its_way_up_and_keeps_what_it_had(tmp_path):
    part = Partial(tmp_path / "z.mp4", 2, 5, 2)
    with pytest.raises(KeyboardInterrupt) as info:
        try:
            try:
                raise interrupts.Terminated()
            except KeyboardInterrupt as exc:
                reraise(exc, partial=part)  # the frame loop
        except KeyboardInterrupt as exc:
            reraise(exc, notes=["p.gif holds 4 progress frames"])  # the recordings around it
    assert isinstance(info.value, interrupts.Terminated)
    assert outcome_of(info.value) == Outcome(partial=part, notes=("p.gif holds 4 progress frames",))
    assert interrupts.exit_code(info.value) == 143


def test_a_cause_the_cli_reports_by_type_is_raised_as_it_is():
    bug = ValueError("unexpected")
    with pytest.raises(ValueError) as info:
        reraise(bug, notes=["x"])
    assert info.value is bug and outcome_of(bug) is None


def test_an_interrupted_zoom_from_python_says_how_many_frames_it_kept(tmp_path, data_dir, monkeypatch):
    import dreamreel.render.runtime as runtime
    from dreamreel.api import write_zoom

    real, calls = runtime.run_dream, []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(runtime, "run_dream", flaky)
    out = tmp_path / "z.mp4"
    with pytest.raises(KeyboardInterrupt) as info:
        write_zoom(str(data_dir / "chelsea.png"), out, frames=8, size=48, octaves=1, steps=1, first_octaves=1)
    part = outcome_of(info.value).partial
    assert (part.output, part.frames, part.total, part.new) == (out, 3, 8, 3)
    assert part.kept_line() == f"{out} holds 3 of 8 frames"
