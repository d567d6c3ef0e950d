"""``cpadv reproduce``: every table and figure of the two papers, resumable, in one report."""
