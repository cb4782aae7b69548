"""dreamreel: deep-dream stills, zoom videos, progress and activation animations, dreamt clips."""

__version__ = "0.1.0"
