"""The apps fans use: release trains per platform, how far behind users update, locales.

UserInteraction version 2 carries `app_version` and `locale`; this module says what they
are for a simulated user. Web clients have no app version (the site deploys at once).
"""

from __future__ import annotations

# Releases per platform, newest first. WEB has none.
APP_RELEASES: dict[str, tuple[str, ...]] = {
    "IOS": ("8.14.2", "8.14.1", "8.14.0", "8.13.3", "8.13.0", "8.12.1", "8.10.0", "7.28.4"),
    "ANDROID": ("8.14.1", "8.14.0", "8.13.2", "8.13.1", "8.12.0", "8.11.2", "8.9.3", "7.27.0"),
    "TV": ("3.4.0", "3.3.2", "3.3.0", "3.2.1", "3.1.0", "3.0.4", "2.9.5", "2.8.0"),
}
# A user's update habit: how many releases behind the newest they run, the same on every
# platform they use (index into APP_RELEASES).
LAG_WEIGHTS = (0.32, 0.15, 0.07, 0.15, 0.11, 0.09, 0.07, 0.04)

# Where a fan's first favourite team plays decides the likely locales; default US.
_MARKETS: dict[str, str] = {
    "nhl-mtl": "QC",
    **dict.fromkeys(("nhl-tor", "nhl-edm", "nhl-van", "nba-tor", "mls-tor"), "CA"),
}
LOCALE_WEIGHTS: dict[str, tuple[tuple[str, float], ...]] = {
    "US": (("en-US", 0.85), ("es-US", 0.11), ("es-MX", 0.02), ("pt-BR", 0.01), ("en-GB", 0.01)),
    "CA": (("en-CA", 0.72), ("fr-CA", 0.18), ("en-US", 0.10)),
    "QC": (("fr-CA", 0.75), ("en-CA", 0.25)),
    # Premier League clubs have many fans in the US too.
    "GB": (("en-GB", 0.55), ("en-US", 0.35), ("es-US", 0.05), ("es-ES", 0.03), ("fr-FR", 0.02)),
}


def market_of(team_id: str) -> str:
    """Home market of a team: "GB" for the Premier League, "CA"/"QC" for Canadian teams."""
    if team_id.startswith("epl-"):
        return "GB"
    return _MARKETS.get(team_id, "US")


def app_version(device: str, lag: int) -> str | None:
    """The version a user `lag` releases behind runs on `device`; None on the web."""
    releases = APP_RELEASES.get(device)
    if releases is None:
        return None
    return releases[min(lag, len(releases) - 1)]


def version_key(version: str) -> tuple[int, ...]:
    """Release "8.14.2" as (8, 14, 2), which orders like the releases."""
    return tuple(int(part) for part in version.split("."))
