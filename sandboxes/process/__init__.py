"""What container (oci) and native modules share: a module in a process of its own that
serves the module service on a Unix socket, and reaches the host through a host service
socket and an egress proxy, one of each per process (the socket is the identity).

    module_client.py   the runtime's client of the module service (mirror: gati_sdk/server.py)
    host_server.py     the host service a module calls (mirror: gati_sdk/host.py)
    egress_proxy.py    HTTP/CONNECT proxy for ordinary HTTP clients inside the sandbox (mirror: gati_sdk/proxy.py)
    call_tokens.py     which call a host or proxy request serves: the token it presents (mirror: gati_sdk/call.py)
    netns.py           listen inside a sandbox's network namespace
    handshake.py       the one-line start-up handshake, as ModuleStartError

The wire rules both sides share (handshake line, call token, refusals, errors) are defined
once, in gati_sdk/protocol/wire.py.
"""
