"""Renders: a still, a zoom, a clip; the frame loop, flow carry, recorders and drawing."""
