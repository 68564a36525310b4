"""How a figure reads in every renderer of the report: sizes in GB or TB (powers of two, as Veeam's
consoles count) and ages in hours or days, so that the terminal and the page say the same thing.
"""

from __future__ import annotations

GB = 2**30  # Veeam's consoles count GB and TB in powers of two
GB_PER_TB = 1024


def size_unit(largest_gb: float) -> tuple[str, float]:
    """The unit sizes up to `largest_gb` GB are shown in, and GB per that unit: GB, or TB from 10,000
    GB (both powers of two, as Veeam's consoles count). The terminal summary and the HTML page use it
    alike, so a figure reads the same in both."""
    return ("TB", GB_PER_TB) if largest_gb >= 10_000 else ("GB", 1)


def size_text(value: int | None, unit: str, per: float) -> str:
    """Bytes in `unit` (`per` GB each, from size_unit): whole numbers from 100 up, else one decimal;
    "?" for None."""
    if value is None:
        return "?"
    x = value / GB / per
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.1f}"


def age_text(hours: float | None) -> str:
    """An age in hours as the report shows it: "3.5 h" under 10 h, "18 h" under 3 days, else "12 d"."""
    if hours is None:
        return "never"
    return f"{hours:.1f} h" if hours < 10 else f"{hours:.0f} h" if hours < 72 else f"{hours / 24:.0f} d"
