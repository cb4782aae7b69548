import math

import pytest

from dreamreel.schedule import ScheduleError, parse_schedule_string


def test_numbers_interpolate_linearly_and_hold_before_the_first_and_after_the_last_key():
    s = parse_schedule_string("10:(1.0), 20:(1.5), 30:(1.2)").series(40, 12)
    assert s[0] == s[10] == 1.0 and s[15] == pytest.approx(1.25) and s[25] == pytest.approx(1.35)
    assert s[30] == s[39] == pytest.approx(1.2)


def test_an_expression_is_evaluated_at_every_frame_up_to_the_next_key():
    s = parse_schedule_string("0:(1.02+0.02*sin(2*pi*t/48)), 24:(1.0)").series(30, 12)
    for t in range(24):
        assert s[t] == pytest.approx(1.02 + 0.02 * math.sin(2 * math.pi * t / 48), abs=1e-12)
    assert s[24:] == [1.0] * 6


def test_variables_are_frame_frame_count_fps_and_seconds():
    s = parse_schedule_string("0:(t + 1000*max_f + fps/1000 + s)").series(5, 8)
    assert s[3] == pytest.approx(3 + 5000 + 0.008 + 3 / 8)


@pytest.mark.parametrize("text, value", [
    ("0:(-2**2)", -4), ("0:(2**-1)", 0.5), ("0:(2**3**2)", 512), ("0:(7 % 3)", 1), ("0:(-7 % 3)", 2),
    ("0:(1+2*3-4/2)", 5), ("0:((1+2)*3)", 9), ("0:(min(3, 1, 2) + max(1, 5))", 6), ("0:(floor(2.7)+ceil(0.2))", 3),
    ("0:(abs(-2)+sqrt(9)+exp(0)+log(e))", 7), ("0:(cos(pi)+tan(0))", -1), ("0:(1e-2)", 0.01), ("0:(.5)", 0.5),
])
def test_operators_functions_and_precedence(text, value):
    assert parse_schedule_string(text).series(1, 12)[0] == pytest.approx(value)


@pytest.mark.parametrize("text, column, words", [
    ("0:(foo)", 4, "unknown name 'foo'"),
    ('0:(__import__("os"))', 4, "unknown name '__import__'"),
    ("0:(t.real)", 5, "no attribute access"),
    ("0:(().__class__)", 5, "expected a number"),
    ("0:(9**9**9)", 8, "beyond +-1e6"),
    ("0:(10**7)", 6, "beyond +-1e6"),
    ("0:((1)", 7, "expected ')'"),
    ("0:(1))", 6, "expected ','"),
    ("1.5:(1)", 1, "whole frame number"),
    ("-1:(1)", 1, "whole frame number"),
    ("0:(1), 0:(2)", 8, "a second key for frame 0"),
    ("0:(2^3)", 5, "write ** for a power"),
    ("0:(sin(1, 2))", 4, "takes 1 argument"),
    ("0:(exp(30))", 4, "beyond +-1e6"),
    ("0:((-8)**(1/3))", 8, "fractional power"),
])
def test_a_bad_string_is_refused_with_the_column_it_points_at(text, column, words):
    with pytest.raises(ScheduleError) as info:
        parse_schedule_string(text).series(3, 12)
    assert info.value.column == column and words in str(info.value)
    assert str(info.value).startswith(f"bad schedule at column {column}: ")


@pytest.mark.parametrize("text, frame", [("0:(1/(t-2))", 2), ("0:(log(3-t))", 3), ("0:(sqrt(2-t))", 3),
                                         ("0:(1), 3:(1/(t-4))", 4)])
def test_a_value_that_is_not_finite_at_one_frame_names_the_frame(text, frame):
    with pytest.raises(ScheduleError, match=f"at frame {frame}:"):
        parse_schedule_string(text).series(6, 12)


def test_a_key_after_the_last_frame_anchors_the_frames_before_it():
    assert parse_schedule_string("100:(2)").series(3, 12) == [2.0] * 3
    assert parse_schedule_string("0:(1), 4:(2), 9:(3)").series(4, 12) == pytest.approx([1, 1.25, 1.5, 1.75])
    assert parse_schedule_string("0:(t), 2:(5), 6:(t)").series(4, 12) == pytest.approx([0, 1, 5, 5.25])


def test_deep_nesting_is_refused_before_python_runs_out_of_stack():
    for text in ["0:(" + "(" * 3000 + "1" + ")" * 3000 + ")", "0:(" + "-" * 5000 + "1)",
                 "0:(" + "sin(" * 1500 + "1" + ")" * 1501]:
        with pytest.raises(ScheduleError, match="nested more than 50 deep"):
            parse_schedule_string(text)
    assert parse_schedule_string("0:(" + "(" * 20 + "2" + ")" * 20 + ")").series(1, 12) == [2.0]


def test_a_chain_of_more_than_300_operations_is_refused():
    with pytest.raises(ScheduleError, match="more than 300 operations"):
        parse_schedule_string("0:(" + "+".join(["1"] * 3000) + ")")
    long = parse_schedule_string(", ".join(f"{k}:({'+'.join(['1'] * 200)})" for k in range(20)))
    assert long.series(3, 12) == [200.0] * 3
