"""Tests for dreamreel.render.draw and .chart: chart/overlay frames must be even-sized RGB, deterministic, and
draw what the numbers say (taller bar -> more pixels, ghost outline, fixed axes, target plot)."""

import cv2
import numpy as np
import pytest

from dreamreel.render import chart, draw

H, W = 160, 200  # image height == MIN_PANEL_HEIGHT, so the image is not rescaled


def _img(h=H, w=W, value=90):
    return np.full((h, w, 3), value, np.uint8)


def _chart(means, **kw):
    kw.setdefault("ghost", None)
    kw.setdefault("y_range", (0.0, 1.0))
    kw.setdefault("caption", "octave 1/1 \u00b7 step 1/10")
    img = kw.pop("image", _img())
    return chart.activation_chart_frame(img, np.asarray(means, float), **kw)


def _panel(frame, image_w=W, panel_h=H):
    """The chart panel: right of the image, above the caption strip."""
    return frame[:panel_h, image_w:]


def _changed(a, b):
    return np.any(a != b, axis=2)


def _column_groups(cols):
    """Split sorted column indices into runs of adjacent columns."""
    cols = np.asarray(cols)
    if cols.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(cols) > 1) + 1
    return np.split(cols, breaks)


def _cmap_rgb(value, code=cv2.COLORMAP_INFERNO):
    return cv2.applyColorMap(np.full((1, 1), value, np.uint8), code)[0, 0, ::-1].astype(int)


# --------------------------------------------------------------------------- frame format


@pytest.mark.parametrize("h,w", [(33, 47), (160, 201), (171, 64), (240, 320)])
@pytest.mark.parametrize("with_target", [False, True])
def test_chart_frame_is_even_sized_rgb_uint8(h, w, with_target):
    kw = dict(target_series=np.linspace(0, 1, 5), target_range=(0, 1), total_steps=9) if with_target else {}
    f = _chart(np.linspace(0, 1, 24), image=_img(h, w), ghost=np.zeros(24), **kw)
    assert f.dtype == np.uint8
    assert f.ndim == 3 and f.shape[2] == 3
    assert f.shape[0] % 2 == 0 and f.shape[1] % 2 == 0
    # panel height follows the image but never drops below the legibility minimum
    assert f.shape[0] >= max(h, chart.MIN_PANEL_HEIGHT)


def test_small_image_is_scaled_up_to_min_panel_height_and_panel_is_wider_than_tall():
    f = _chart(np.ones(16), image=_img(40, 60))
    panel_h = chart.MIN_PANEL_HEIGHT
    img_w = round(60 * panel_h / 40)  # 240
    # left part is the (flat grey) image scaled to the panel height
    assert np.all(f[:panel_h, :img_w] == 90)
    panel_w = f.shape[1] - img_w
    assert 1.2 * panel_h <= panel_w <= 1.4 * panel_h


def test_chart_frame_size_does_not_depend_on_values_or_caption():
    a = _chart(np.zeros(50), caption="")
    b = _chart(np.linspace(-3, 9, 50), ghost=np.ones(50), y_range=(-5, 10), caption="octave 3/3 \u00b7 step 99/100 \u00b7 x" * 4)
    assert a.shape == b.shape


# --------------------------------------------------------------------------- chart content


def test_chart_is_deterministic_for_equal_inputs():
    m = np.random.default_rng(1).random(112)
    kw = dict(ghost=m * 0.5, target_series=[0.1, 0.4], target_range=(0, 1), total_steps=10, layer="Mixed_6e")
    assert np.array_equal(_chart(m, **kw), _chart(m.copy(), **kw))


def test_chart_region_differs_when_means_differ():
    rng = np.random.default_rng(2)
    m = rng.random(64)
    m2 = m.copy()
    m2[10] += 0.3
    a, b = _panel(_chart(m)), _panel(_chart(m2))
    assert _changed(a, b).sum() > 0
    # only the columns of feature 10 change
    assert len(_column_groups(np.flatnonzero(_changed(a, b).any(axis=0)))) == 1


def test_taller_bar_covers_more_pixels_in_its_column_than_shorter_bar():
    zero = _panel(_chart(np.zeros(16)))
    m = np.zeros(16)
    m[3], m[10] = 0.8, 0.3
    frame = _panel(_chart(m))
    diff = _changed(zero, frame)
    groups = _column_groups(np.flatnonzero(diff.any(axis=0)))
    assert len(groups) == 2, "one group of changed columns per non-zero feature"
    left, right = groups  # features are drawn in index order, left to right
    tall = diff[:, left].sum(axis=0).max()
    short = diff[:, right].sum(axis=0).max()
    assert tall > short > 0
    assert tall / short == pytest.approx(0.8 / 0.3, rel=0.15)


def test_bars_are_separate_for_few_features_and_a_filled_profile_for_many():
    few = _changed(_panel(_chart(np.zeros(16))), _panel(_chart(np.full(16, 0.5)))).any(axis=0)
    assert len(_column_groups(np.flatnonzero(few))) == 16  # 1 px gaps between bars

    many = _changed(_panel(_chart(np.zeros(2000))), _panel(_chart(np.full(2000, 0.5)))).any(axis=0)
    groups = _column_groups(np.flatnonzero(many))
    assert len(groups) == 1  # thinner than a pixel per feature: one continuous filled area
    assert groups[0].size > 0.7 * chart.MIN_PANEL_HEIGHT * chart.PANEL_ASPECT


def test_many_features_keep_isolated_peaks_visible():
    m = np.zeros(2000)
    m[1234] = 0.9  # one feature among 2000 in a ~180 px wide plot
    diff = _changed(_panel(_chart(np.zeros(2000))), _panel(_chart(m)))
    cols = np.flatnonzero(diff.any(axis=0))
    assert cols.size >= 1
    assert diff.sum(axis=0).max() > 0.5 * chart.MIN_PANEL_HEIGHT * 0.5  # still a tall bar


def test_ghost_outline_is_drawn_above_bar_where_ghost_exceeds_means():
    m = np.zeros(16)
    m[5] = 0.2
    g = m.copy()
    g[5] = 0.8
    no_ghost_change = _panel(_chart(m, ghost=m))
    with_ghost = _panel(_chart(m, ghost=g))
    diff = _changed(no_ghost_change, with_ghost)
    assert diff.any()
    ghost_px = np.all(with_ghost == chart.GHOST, axis=2) & diff
    assert ghost_px.sum() > 0
    # the outline sits well above the (shorter) current bar
    bar_px = np.all(with_ghost == chart.BAR_BASE, axis=2)
    cols = np.flatnonzero(ghost_px.any(axis=0))
    assert bar_px[:, cols].any()
    ghost_row = np.flatnonzero(ghost_px[:, cols].any(axis=1)).min()
    bar_top = np.flatnonzero(bar_px[:, cols].any(axis=1)).min()
    assert ghost_row < bar_top - 10


def test_growth_above_ghost_is_drawn_in_growth_colour():
    g = np.full(16, 0.2)
    m = g.copy()
    m[7] = 0.9
    grown, flat = _panel(_chart(m, ghost=g)), _panel(_chart(g, ghost=g))
    diff = _changed(flat, grown)
    growth = np.all(grown == chart.BAR_GROWTH, axis=2) & diff
    # only feature 7 grew: one run of growth-coloured columns, covering its rise from 0.2 to 0.9
    assert len(_column_groups(np.flatnonzero(growth.any(axis=0)))) == 1
    assert growth.sum(axis=0).max() >= 0.8 * diff.sum(axis=0).max()
    # nothing grew -> no growth colour anywhere in the plot (the legend swatch is the same in both)
    assert np.array_equal(np.all(flat == chart.BAR_GROWTH, axis=2),
                          np.all(_panel(_chart(np.zeros(16), ghost=np.zeros(16))) == chart.BAR_GROWTH, axis=2))


def test_negative_means_draw_below_the_zero_line():
    zero = _panel(_chart(np.zeros(16), y_range=(-1, 1)))
    m = np.zeros(16)
    m[2], m[12] = 0.6, -0.6
    diff = _changed(zero, _panel(_chart(m, y_range=(-1, 1))))
    pos, neg = _column_groups(np.flatnonzero(diff.any(axis=0)))
    pos_rows = np.flatnonzero(diff[:, pos].any(axis=1))
    neg_rows = np.flatnonzero(diff[:, neg].any(axis=1))
    assert pos_rows.max() < neg_rows.min() + 2  # positive bar above, negative bar below zero
    assert abs(pos_rows.size - neg_rows.size) <= 2


def test_fixed_y_range_draws_same_means_identically_whatever_was_drawn_before():
    m = np.linspace(0, 0.7, 40)
    first = _chart(m, y_range=(0, 2))
    rng = np.random.default_rng(3)
    for _ in range(5):  # other frames, other values and ranges (fills any caches)
        _chart(rng.random(40) * 5, y_range=(0, float(rng.uniform(1, 9))), ghost=rng.random(40))
    assert np.array_equal(first, _chart(m, y_range=(0, 2)))


def test_wider_y_range_makes_the_same_bar_shorter():
    m = np.zeros(16)
    m[4] = 0.5
    heights = []
    for hi in (1.0, 2.0):
        diff = _changed(_panel(_chart(np.zeros(16), y_range=(0, hi))), _panel(_chart(m, y_range=(0, hi))))
        heights.append(diff.sum(axis=0).max())
    assert heights[1] == pytest.approx(heights[0] / 2, rel=0.15)


def test_target_series_adds_line_pixels_in_target_plot_below_bars():
    m = np.random.default_rng(4).random(32)
    kw = dict(target_range=(0.0, 1.0), total_steps=20, target_label="")
    empty = _panel(_chart(m, target_series=[], **kw))
    drawn = _panel(_chart(m, target_series=np.linspace(0.05, 0.95, 12), **kw))
    diff = _changed(empty, drawn)
    assert diff.sum() > 20
    rows = np.flatnonzero(diff.any(axis=1))
    assert rows.min() > H // 2  # the target plot lives in the lower part of the panel
    line_px = np.all(drawn == chart.TARGET_LINE, axis=2)
    assert line_px.sum() > 5


def _target_dot(panel):
    """(row, col) of the current-value dot: the rightmost pixels in the exact target-line colour."""
    px = np.all(panel == chart.TARGET_LINE, axis=2)
    rows, cols = np.nonzero(px)
    right = cols >= cols.max() - 2
    return rows[right].mean(), cols.max()


def test_target_line_extends_right_as_steps_accumulate_on_fixed_x_axis():
    kw = dict(target_range=(0.0, 1.0), total_steps=40)
    m = np.zeros(8)
    xs = [_target_dot(_panel(_chart(m, target_series=np.full(n, 0.5), **kw)))[1] for n in (5, 20, 41)]
    assert xs[0] < xs[1] < xs[2]
    # x is step / total_steps of the plot width: step 19 sits about halfway between step 4 and step 40
    assert (xs[1] - xs[0]) / (xs[2] - xs[0]) == pytest.approx(15 / 36, abs=0.05)


def test_target_range_is_fixed_so_same_value_plots_at_same_height():
    kw = dict(target_range=(0.0, 1.0), total_steps=10)
    m = np.zeros(8)
    y_a = _target_dot(_panel(_chart(m, target_series=[0.1, 0.5], **kw)))[0]
    y_b = _target_dot(_panel(_chart(m, target_series=[0.9, 0.5], **kw)))[0]
    assert y_a == pytest.approx(y_b, abs=0.5)  # earlier values do not rescale the axis
    y_hi = _target_dot(_panel(_chart(m, target_series=[0.9, 0.9], **kw)))[0]
    y_wide = _target_dot(_panel(_chart(m, target_series=[0.1, 0.5], target_range=(0.0, 2.0), total_steps=10)))[0]
    assert y_hi < y_a < y_wide  # higher value -> higher; wider range -> same value sits lower


def test_mismatched_ghost_length_is_rejected():
    with pytest.raises(ValueError):
        _chart(np.zeros(10), ghost=np.zeros(11))


# --------------------------------------------------------------------------- overlay


def test_overlay_with_zero_alpha_returns_the_image():
    img = np.random.default_rng(5).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    out = draw.overlay_frame(img, np.random.default_rng(6).random((7, 7)), alpha=0.0)
    assert np.array_equal(out, img)


def test_overlay_is_even_sized_rgb_uint8_for_odd_image():
    out = draw.overlay_frame(_img(33, 45), np.ones((5, 5)), caption="step 1")
    assert out.dtype == np.uint8 and out.shape[2] == 3
    assert out.shape[0] % 2 == 0 and out.shape[1] % 2 == 0
    assert out.shape[0] > 33 and out.shape[1] == 46


def test_overlay_high_activation_region_gets_hot_colour():
    img = np.zeros((64, 64, 3), np.uint8)
    hm = np.zeros((8, 8))
    hm[:4, :4] = 1.0  # top-left quadrant active
    out = draw.overlay_frame(img, hm, alpha=1.0, colormap="inferno").astype(int)
    hot, cold = _cmap_rgb(255), _cmap_rgb(0)
    assert np.abs(out[5, 5] - hot).max() <= 2
    assert np.abs(out[58, 58] - cold).max() <= 2
    # heatmap is resized to the image: the hot region covers about a quarter of it
    hot_frac = np.mean(np.abs(out - hot).max(axis=2) <= 40)
    assert 0.15 < hot_frac < 0.35


def test_overlay_colormap_name_selects_opencv_colormap():
    img = np.zeros((16, 16, 3), np.uint8)
    out = draw.overlay_frame(img, np.ones((2, 2)), alpha=1.0, colormap="viridis", value_range=(0, 1))
    assert np.abs(out[8, 8].astype(int) - _cmap_rgb(255, cv2.COLORMAP_VIRIDIS)).max() <= 2
    with pytest.raises(ValueError):
        draw.overlay_frame(img, np.ones((2, 2)), colormap="no-such-map")


def test_overlay_value_range_normalisation_is_respected():
    img = np.zeros((32, 32, 3), np.uint8)
    half = np.full((4, 4), 0.5)
    mid = draw.overlay_frame(img, half, alpha=1.0, value_range=(0.0, 1.0)).astype(int)
    assert np.abs(mid[16, 16] - _cmap_rgb(128)).max() <= 3
    # same map against a wider fixed range reads colder
    wide = draw.overlay_frame(img, half, alpha=1.0, value_range=(0.0, 2.0)).astype(int)
    assert np.abs(wide[16, 16] - _cmap_rgb(64)).max() <= 3
    # out-of-range values clip to the colormap ends
    over = draw.overlay_frame(img, np.full((4, 4), 5.0), alpha=1.0, value_range=(0.0, 1.0)).astype(int)
    under = draw.overlay_frame(img, np.full((4, 4), -5.0), alpha=1.0, value_range=(0.0, 1.0)).astype(int)
    assert np.abs(over[16, 16] - _cmap_rgb(255)).max() <= 2
    assert np.abs(under[16, 16] - _cmap_rgb(0)).max() <= 2
    # scaling map and range together changes nothing
    hm = np.random.default_rng(7).random((6, 6))
    a = draw.overlay_frame(img, hm, alpha=0.7, value_range=(0.0, 1.0))
    b = draw.overlay_frame(img, hm * 10, alpha=0.7, value_range=(0.0, 10.0))
    assert np.array_equal(a, b)


def test_overlay_without_value_range_normalises_per_frame():
    img = np.zeros((32, 32, 3), np.uint8)
    hm = np.random.default_rng(8).random((6, 6))
    a = draw.overlay_frame(img, hm, alpha=1.0)
    b = draw.overlay_frame(img, hm * 100 + 7, alpha=1.0)  # same shape of map, other units
    assert np.array_equal(a, b)


# --------------------------------------------------------------------------- caption strip, fit_even


def test_caption_bar_adds_height_with_text_pixels_and_keeps_the_frame():
    frame = np.random.default_rng(9).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    out = draw.caption_bar(frame, "octave 1/2 \u00b7 step 3/4")
    assert out.shape[0] > 120 and out.shape[1] == 160
    assert out.shape[0] % 2 == 0
    assert np.array_equal(out[:120], frame)
    strip = out[120:].reshape(-1, 3)
    assert len(np.unique(strip, axis=0)) > 2  # text was drawn, not just a blank strip


def test_caption_bar_height_is_independent_of_text():
    frame = _img(90, 120)
    heights = {draw.caption_bar(frame, t).shape[0] for t in ("", "a", "octave 1/2 \u00b7 step 3/4", "x" * 300)}
    assert len(heights) == 1


def test_caption_middle_dot_is_drawn_not_replaced_by_question_mark():
    frame = _img(90, 200)
    dot = draw.caption_bar(frame, "a \u00b7 b")
    qmark = draw.caption_bar(frame, "a ? b")
    assert not np.array_equal(dot, qmark)


def test_fit_even_pads_odd_dimensions_by_one_and_leaves_even_frames_alone():
    even = np.zeros((4, 6, 3), np.uint8)
    assert draw.fit_even(even) is even
    odd = np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3)
    out = draw.fit_even(odd)
    assert out.shape == (4, 6, 3)
    assert np.array_equal(out[:3, :5], odd)
    assert np.array_equal(out[3, :5], odd[2])  # replicated edge, not a black line
