"""How numbers read on the page: 4 significant digits, times in words ('22 min'), sizes in MB/GB, counts with
thousands separators, ordinals ('2nd'). Plain functions; every tab may use them. None reads as ''."""

from __future__ import annotations

import math
import time


def number(value, digits: int = 4) -> str:
    """1.7705320358276366 -> '1.771'; 0.005 -> '0.005'; 123456.7 -> '123,457'; an int stays whole."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) or abs(value) >= 10**digits:
        return f"{round(value):,}"
    text = f"{value:.{digits}g}"
    if "e" in text:  # tiny values: 1.234e-5 reads better than 0.00001234
        mantissa, exponent = text.split("e")
        return f"{round(value):,}" if int(exponent) > 0 else f"{mantissa}e{int(exponent)}"
    return text


def duration(seconds) -> str:
    """45 -> '45 s'; 1329 -> '22 min'; 5400 -> '1 h 30 min'; 200000 -> '2 d 7 h'."""
    if seconds is None:
        return ""
    seconds = max(0.0, float(seconds))
    if seconds < 1:
        return "under 1 s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def size_mb(megabytes) -> str:
    """Megabytes as people read them: 512.4 -> '512 MB'; 1536 -> '1.5 GB'."""
    if megabytes is None:
        return ""
    megabytes = float(megabytes)
    if megabytes >= 1024:
        return f"{megabytes / 1024:.3g} GB"
    return f"{megabytes:.3g} MB" if megabytes < 100 else f"{megabytes:.0f} MB"


def count(value) -> str:
    """12345.0 -> '12,345'."""
    return "" if value is None else f"{round(float(value)):,}"


def ordinal(n: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', 23 -> '23rd'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def when(ts: float | None) -> str:
    """A timestamp as local 'YYYY-MM-DD HH:MM' ('' when unknown)."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else ""
