"""A small fake Plane for tests and local demos (standard library only).

`plane_standin.server` holds the server (`PlaneStandIn`), put together from `world` (what
Plane stores), `api` (its REST routes) and `controls` (faults, the request log, webhooks);
`board` is the person's pages. `python -m plane_standin` runs it with demo data.
"""
