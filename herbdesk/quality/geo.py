"""Coordinates against the record's country: swapped, sign-flipped or elsewhere.

Country outlines come from countryinfo (GeoJSON shipped in the package, offline) and are tested
with shapely. The outlines are coarse (a few km off on coasts and borders), so a point within
TOLERANCE_DEG of its country's outline counts as inside. Only when the given point is outside
are the usual transcription slips tried: a flipped sign, latitude and longitude swapped; the
first that lands in the country names the slip.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

TOLERANCE_DEG = 0.5  # about 50 km: coarse outlines, coastal and island localities


@lru_cache(maxsize=512)
def _outline(alpha2: str) -> Any | None:
    """The country's outline grown by the tolerance, prepared for fast point tests; None when
    no outline ships for the code."""
    from countryinfo import CountryInfo
    from shapely.geometry import shape
    from shapely.prepared import prep

    try:
        gj = CountryInfo(alpha2).geo_json()
    except Exception:  # countryinfo raises its own errors for codes it does not hold
        return None
    features = gj.get("features") if isinstance(gj, dict) else None
    if not features:
        return None
    try:
        geom = shape(features[0]["geometry"])
    except (KeyError, TypeError, ValueError):
        return None
    return prep(geom.buffer(TOLERANCE_DEG))


def _inside(outline: Any, lat: float, lon: float) -> bool:
    from shapely.geometry import Point

    return bool(outline.contains(Point(lon, lat)))


def coordinate_problem(lat: float, lon: float, alpha2: str) -> tuple[str, str] | None:
    """(check name, detail) when the point does not lie in the country `alpha2`, else None
    (also None when no outline is known for the country: nothing can be told)."""
    outline = _outline(alpha2.upper())
    if outline is None or _inside(outline, lat, lon):
        return None
    slips = (
        ("coord_sign_flipped", -lat, lon, "with the latitude's sign flipped"),
        ("coord_sign_flipped", lat, -lon, "with the longitude's sign flipped"),
        ("coord_sign_flipped", -lat, -lon, "with both signs flipped"),
        ("coord_swapped", lon, lat, "with latitude and longitude swapped"),
    )
    for check, la, lo, how in slips:
        if -90.0 <= la <= 90.0 and _inside(outline, la, lo):
            return check, f"{la:g}, {lo:g} ({how}) lies in {alpha2.upper()}"
    return "coord_outside_country", f"not within ~50 km of {alpha2.upper()}"
