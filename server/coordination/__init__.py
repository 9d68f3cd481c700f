"""Coordination and supervision: the city federation's view of every district.

Plain functions over a session (no Flask) in dashboard, problems, spotcheck, evaluation
and exports; the HTTP layer (pages and JSON) is `web`.
"""
