"""Capabilities: the one vocabulary and the one check shared by every sandbox.

One unit per capability, each owning its manifest section's validation, its decision,
its runtime state and what a sandbox is handed at start (the manner of Spin's factors):

    egress.py    [capabilities] egress: rules, the matcher, anti-SSRF, the resolver
    files.py     [capabilities] files: grants, the decision, opens that follow no link, mounts
    env.py       [capabilities] env: names passed through, the map handed over at start
    secrets.py   [capabilities] secrets: names read through the host; reserved env names
    kv.py        [capabilities] kv: named stores
    modules.py   [capabilities] modules: callees, the nested call; the module name pattern
    limits.py    [limits]: bounds, and LimitHit, how every backend reports a stop

decision.py holds the Decision every unit answers with. The units know no manifest: the
manifest (runtime/core/manifest.py) is made of their sections, runtime/core/policy.py composes
the units for one module, and runtime/core/host.py audits each decision and acts. A new capability is a new
unit here, a field of manifest.Capabilities checked by the unit, a method on Policy, and
the Host operation (and, for containers and native modules, the host service call) that
asks it.
"""
