"""`audit.py sweep`: audit every records folder that a queue of pull-request heads adds or changes.

gitsource.py reads refs, merge-bases and folders straight from git objects (no checkout); audit_queue.py
audits the folders in parallel with a content cache; rows.py turns reports into the maintainer's table
(legal frontier, significance, disagreement with the merge state); render.py writes text, JSON,
Markdown and a self-contained HTML page.
"""
