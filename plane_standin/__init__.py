"""A small fake Plane for tests and local demos (standard library only).

`plane_standin.server` holds the server; `python -m plane_standin` runs it with demo data.
"""
