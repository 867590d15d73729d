"""The Panel dashboard that explores trained runs: ``panel serve dashboard/app.py`` (see dashboard/app.py)."""
