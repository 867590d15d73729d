"""What the app benchmarks look for in the dashboard's page, and how long they wait for it.

The selectors and model names follow dashboard/views.py and dashboard/gallery.py: if the page
lacks one, the measurements that need it are skipped with a message naming it.
"""

from __future__ import annotations

__all__ = ["INSPECTOR_TITLE", "READY", "SELECTION_TIMEOUT_S", "START_TIMEOUT_S", "THUMBNAIL", "VOTES_TITLE"]

READY = ".bk-tab"  # the tab bar: rendered once the session's document is
THUMBNAIL = "figure.thumb"  # gallery thumbnails, data-digit = test index
INSPECTOR_TITLE = "inspector-title"  # css class of the inspector's title ("Test digit N ...")
VOTES_TITLE = "Predicted label across posterior draws"  # the inspector's vote histogram; column "draws"

START_TIMEOUT_S = 180.0  # for the server to start, and for a page or a session to open
SELECTION_TIMEOUT_S = 30.0  # for the inspector to show a selected digit
