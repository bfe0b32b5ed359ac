"""egress: outbound connections, by rule `scheme://host:port`; the one matcher every backend runs.

Manifest section: `[capabilities] egress = ["https://api.example.com:443"]`. Nothing is
handed over at start: each connection is decided when it is made (the HTTP host call,
or the egress proxy of containers and native modules), by name, then by each address the
name resolves to (`Resolver`, this capability's runtime state).

Semantics (DESIGN.md):
- `*` in a host matches exactly one whole DNS label and never crosses a dot:
  `*.example.com` matches `api.example.com`, not `example.com`, not `a.b.example.com`,
  and never `evil-example.com`.
- An empty rule list denies everything. Allowing every host must be spelled out as
  the single rule `insecure:allow-all`.
- After DNS resolution, addresses that are not globally routable (private, loopback,
  link-local, cloud metadata, CGNAT, multicast, reserved) are refused unless a rule
  names that exact address as its host. This holds even under allow-all: anti-SSRF is
  the default, not an option. An IPv6 address that embeds an IPv4 one (mapped,
  compatible, NAT64, 6to4, Teredo) is judged by the IPv4 address it carries.
- A wildcard that covers a whole public suffix (`*.com`, `*.co.uk`, `*.github.io`) is
  refused like `*`: it names no one's domain (the public suffix list of `publicsuffixlist`,
  the snapshot it ships; nothing is fetched).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList

from runtime.core.capabilities.decision import Decision, grant_line
from runtime.core.errors import GatiError, ManifestError

ALLOW_ALL = "insecure:allow-all"
DEFAULT_PORTS = {"http": 80, "https": 443}
SCHEMES = {"http", "https", "tcp", "*"}
METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
FIELD = "egress"
MAX_RULE = 300  # a scheme, a 253-byte name and a port

_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052
# IPv6 prefixes whose low 32 bits are an IPv4 address a packet ends up at (or claims to).
_LOW32_IPV4 = [
    ipaddress.ip_network("::/96"),  # IPv4-compatible (deprecated, RFC 4291)
    ipaddress.ip_network("::ffff:0:0/96"),  # IPv4-mapped
    ipaddress.ip_network("::ffff:0:0:0/96"),  # IPv4-translated (SIIT, RFC 2765)
    _NAT64_WELL_KNOWN,
]
# NAT64 local-use prefix (RFC 8215): the operator picks where the IPv4 address sits, so the
# address cannot be read back; it is never a global destination.
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class EgressRule:
    scheme: str
    host: str  # lower-case pattern, or the text form of an IP address
    port: int | None  # None: any port (`*`)
    text: str

    @property
    def address(self) -> IPAddress | None:
        """The address this rule names explicitly, if its host is an IP literal."""
        return _ip_or_none(self.host)

    def matches(self, scheme: str, host: str, port: int) -> bool:
        if self.scheme != "*" and self.scheme != scheme:
            return False
        if self.port is not None and self.port != port:
            return False
        if self.address is not None:
            return self.address == _ip_or_none(host)
        pattern, labels = self.host.split("."), host.split(".")
        return len(pattern) == len(labels) and all(p == "*" or p == l for p, l in zip(pattern, labels))


@dataclass(frozen=True)
class Target:
    """A normalised egress target: what a rule is matched against."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_rule(text: str) -> EgressRule:
    """Parse one rule or raise ValueError saying what is wrong and what a good rule looks like."""
    example = 'write it as "https://api.example.com:443" or "https://*.example.com:443"'
    if not isinstance(text, str) or not text:
        raise ValueError(f"an egress rule must be a non-empty string; {example}")
    if text.strip() != text or any(c.isspace() for c in text):
        raise ValueError(f"egress rule {text!r} contains whitespace; {example}")
    if text in ("*", "*://*", "*://*:*"):
        raise ValueError(f'egress rule {text!r} would allow every host: spell that "{ALLOW_ALL}" if you mean it')
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise ValueError(f"egress rule {text!r} has no scheme; {example}")
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"egress rule {text!r}: scheme {scheme!r} is not one of http, https, tcp, *")
    if "/" in rest or "@" in rest or "?" in rest or "#" in rest:
        raise ValueError(f"egress rule {text!r} may name only scheme, host and port (no path or user); {example}")
    host, port_text = _split_host_port(rest, text)
    if port_text is None:
        if scheme not in DEFAULT_PORTS:
            raise ValueError(f"egress rule {text!r} needs a port for scheme {scheme!r}, e.g. {scheme}://{host}:443")
        port: int | None = DEFAULT_PORTS[scheme]
    elif port_text == "*":
        port = None
    else:
        if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"egress rule {text!r}: port {port_text!r} must be 1-65535 or *")
        port = int(port_text)
    return EgressRule(scheme, _normalise_host_pattern(host, text), port, text)


def parse_target(url: str) -> Target:
    """Normalise a URL (`https://Api.Example.com/x`) into the target rules are matched against."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {url!r} ({exc})") from None
    if scheme not in DEFAULT_PORTS and scheme != "tcp":
        raise ValueError(f"URL {url!r} must start with http:// or https://")
    if not host:
        raise ValueError(f"URL {url!r} has no host")
    if port is None:
        if scheme not in DEFAULT_PORTS:
            raise ValueError(f"URL {url!r} needs a port")
        port = DEFAULT_PORTS[scheme]
    return Target(scheme, normalise_host(host), port)


def normalise_host(host: str) -> str:
    host = host.strip("[]").rstrip(".").lower()
    ip = _ip_or_none(host)
    if ip is not None:
        return str(ip)
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"host {host!r} is not a valid DNS name") from None


def match(rules: list[EgressRule], target: Target) -> EgressRule | None:
    """The first rule that allows the target by name, or None."""
    return next((r for r in rules if r.matches(target.scheme, target.host, target.port)), None)


def embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    if ip.version == 4:
        return []
    found = [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) for net in _LOW32_IPV4 if ip in net]
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found += list(ip.teredo)  # (server, client): both are where packets go
    return found


def is_special_address(ip: IPAddress) -> bool:
    """True for addresses a module must not reach unless a rule names them (anti-SSRF)."""
    if ip.version == 6:
        if ip in _NAT64_LOCAL:
            return True
        embedded = embedded_ipv4(ip)
        if any(_special(v4) for v4 in embedded):
            return True
        if ip.ipv4_mapped is not None or ip in _NAT64_WELL_KNOWN:
            return False  # the packet goes to the IPv4 address, which alone judges it
    return _special(ip)


def _special(ip: IPAddress) -> bool:
    return ip in METADATA_ADDRESSES or not ip.is_global or ip.is_multicast or (ip.version == 6 and ip.is_reserved)


def address_allowed(rules: list[EgressRule], target: Target, ip: IPAddress) -> bool:
    """May the target connect to this resolved address? Global ones yes; others only if named."""
    if not is_special_address(ip):
        return True
    return any(r.address == ip and r.matches(target.scheme, str(ip), target.port) for r in rules)


def _split_host_port(rest: str, text: str) -> tuple[str, str | None]:
    if rest.startswith("["):
        host, bracket, after = rest[1:].partition("]")
        if not bracket:
            raise ValueError(f"egress rule {text!r}: unclosed [ in IPv6 address")
        if after and not after.startswith(":"):
            raise ValueError(f"egress rule {text!r}: expected :port after the IPv6 address")
        return host, (after[1:] if after else None)
    host, colon, port = rest.rpartition(":")
    return (host, port) if colon else (rest, None)


def _normalise_host_pattern(host: str, text: str) -> str:
    if not host:
        raise ValueError(f"egress rule {text!r} has no host")
    ip = _ip_or_none(host)
    if ip is not None:
        return str(ip)
    host = host.rstrip(".").lower()
    if len(host) > 253:
        raise ValueError(f"egress rule {text!r}: a host name is at most 253 characters")
    labels = host.split(".")
    if all(label == "*" for label in labels):
        raise ValueError(f'egress rule {text!r} matches every host: spell that "{ALLOW_ALL}" if you mean it')
    for label in labels:
        if label == "*":
            continue
        if "*" in label:
            raise ValueError(
                f"egress rule {text!r}: '*' must be a whole DNS label ('*.example.com'), not part of one ({label!r})"
            )
        if not (
            0 < len(label) <= 63
            and label.isascii()
            and all(c.isalnum() or c in "-_" for c in label)
            and not label.startswith("-")
            and not label.endswith("-")
        ):
            raise ValueError(f"egress rule {text!r}: {label!r} is not a valid DNS label")
    for i, label in enumerate(labels):
        suffix = ".".join(labels[i + 1:])
        if label == "*" and _public_suffixes().is_public(suffix):
            raise ValueError(
                f"egress rule {text!r}: '*.{suffix}' covers every domain under the public suffix {suffix!r}, "
                f'like "*" does: name a domain (e.g. "*.example.{suffix}"), or spell "{ALLOW_ALL}" if you mean it'
            )
    return host


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    """The public suffix list shipped with publicsuffixlist (read once; no network)."""
    return PublicSuffixList()


def _ip_or_none(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


# The manifest section --------------------------------------------------------------------


def check(rules: list[str], file: str) -> None:
    """Validate the manifest section; raises ManifestError."""
    for i, rule in enumerate(rules):
        if rule == ALLOW_ALL:
            continue
        if len(rule) > MAX_RULE:
            raise ManifestError(file, f"capabilities.egress[{i}]", f"a rule of {len(rule)} characters is too long", f"at most {MAX_RULE}: scheme://host:port")
        try:
            parse_rule(rule)
        except ValueError as exc:
            raise ManifestError(file, f"capabilities.egress[{i}]", str(exc), 'e.g. egress = ["https://api.example.com:443"]') from None


# Runtime state: names to addresses ---------------------------------------------------------


class EgressError(GatiError):
    code = "egress_failed"
    http_status = 502


class Resolver:
    """Names to addresses for egress: the fixed names of gati.toml [egress] hosts, else DNS."""

    def __init__(self, fixed: Mapping[str, str] | None = None):
        self.fixed = {k.lower().rstrip("."): v for k, v in (fixed or {}).items()}

    async def resolve(self, target: Target) -> list[IPAddress]:
        literal = _ip_or_none(target.host)
        if literal is not None:
            return [literal]
        if target.host in self.fixed:
            return [_ip_or_none(self.fixed[target.host])]
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise EgressError(f"cannot resolve {target.host}: {exc}") from None
        return list(dict.fromkeys(_ip_or_none(info[4][0].split("%")[0]) for info in infos))


# The decision ------------------------------------------------------------------------------


class EgressCapability:
    """The declared rules (config), the resolver (runtime state), and the two-step decision."""

    def __init__(self, declared: list[str], resolver: Resolver | None):
        self.allow_all = ALLOW_ALL in declared
        self.rules = [parse_rule(r) for r in declared if r != ALLOW_ALL]
        self.resolver = resolver or Resolver()

    def decide(self, url: str) -> tuple[Decision, Target | None]:
        """Name-level decision; the caller must then check each resolved address."""
        try:
            target = parse_target(url)
        except ValueError as exc:
            return Decision("egress", url, False, reason=str(exc)), None
        rule = match(self.rules, target)
        if rule is not None:
            return Decision("egress", str(target), True, rule=rule.text), target
        if self.allow_all:
            return Decision("egress", str(target), True, rule=ALLOW_ALL), target
        grant = grant_line(FIELD, f"{target.scheme}://{target.host}:{target.port}")
        return Decision("egress", str(target), False, grant=grant, reason="no egress rule matches"), target

    def decide_address(self, target: Target, ip: IPAddress) -> Decision:
        where = f"{target} ({ip})"
        if address_allowed(self.rules, target, ip):
            return Decision("egress", where, True, rule=str(target))
        host = f"[{ip}]" if ip.version == 6 else str(ip)
        return Decision(
            "egress",
            where,
            False,
            grant=grant_line(FIELD, f"{target.scheme}://{host}:{target.port}"),
            reason=f"{target.host} resolves to {ip}, a private, loopback, link-local or metadata address",
        )

    async def resolve(self, target: Target) -> list[IPAddress]:
        return await self.resolver.resolve(target)
