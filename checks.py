"""
The checks every settings dataclass runs in its __post_init__ (GPTConfig, TrainConfig, each script's
own): each raises a one-line ValueError that names the setting, its value and what to use instead.
"""
import math


def at_least(config, low, *keys):
    for key in keys:
        if not getattr(config, key) >= low:
            raise ValueError(f"{key}={getattr(config, key)!r}: use {low} or more")


def one_of(config, key, *choices):
    if getattr(config, key) not in choices:
        raise ValueError(f"{key}={getattr(config, key)!r}: choose one of {', '.join(map(repr, choices))}")


def within(config, key, low, high=math.inf, low_open=False, high_open=False):
    """low <= value <= high, either end open; NaN and infinities are rejected too."""
    v = getattr(config, key)
    if not (math.isfinite(v) and (low < v if low_open else low <= v) and (v < high if high_open else v <= high)):
        bounds = f"{'>' if low_open else '>='} {low}" + ('' if high == math.inf else f" and {'<' if high_open else '<='} {high}")
        kind = 'a whole number' if isinstance(v, int) else 'a finite number'
        raise ValueError(f"{key}={v!r}: use {kind} {bounds}")
