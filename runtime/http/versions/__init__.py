"""Timescape: several versions of one route, live side by side (docs/versions.md).

    layout.py        handlers/users/[id]@2.py and [id]@2.transform.py: which file is which version
    resolver.py      the version a request asks for (header, date pin, query, default): pure, fast
    compat.py        breaking or not: the GType diff of two versions' REQUEST and RESPONSE
    in_place.py      a served version whose own file broke the contract its clients were served
    transformers.py  up(body) / down(body) pairs and the chains they form
    graph.py         one route's versions: its default, and what runs for each version asked
    availability.py  versions out of service (unhealthy, retired): the fallback, 503 / 410, drains
    health.py        HEALTH and health(gctx) of a version file
    deprecation.py   DEPRECATED / SUNSET: the Deprecation, Sunset and Link headers
    store.py         the manifest store (versions.db in the state directory)
    cluster_store.py the same store shared by a cluster's instances (JetStream KV)
    service.py       the background task: store writes, health checks, served times, drains

runtime.http.routing loads the files and builds a VersionSet per route that has several;
runtime.http.dispatch asks the set which Route serves a request. Nothing here imports routing.
"""
