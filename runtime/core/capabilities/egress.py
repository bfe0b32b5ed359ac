"""Egress rules: `scheme://host:port`, the one matcher every backend runs.

Semantics (DESIGN.md):
- `*` in a host matches exactly one whole DNS label and never crosses a dot:
  `*.example.com` matches `api.example.com`, not `example.com`, not `a.b.example.com`,
  and never `evil-example.com`.
- An empty rule list denies everything. Allowing every host must be spelled out as
  the single rule `insecure:allow-all`.
- After DNS resolution, addresses that are not globally routable (private, loopback,
  link-local, cloud metadata, CGNAT, multicast, reserved) are refused unless a rule
  names that exact address as its host. This holds even under allow-all: anti-SSRF is
  the default, not an option.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

ALLOW_ALL = "insecure:allow-all"
DEFAULT_PORTS = {"http": 80, "https": 443}
SCHEMES = {"http", "https", "tcp", "*"}
METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}

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


def is_special_address(ip: IPAddress) -> bool:
    """True for addresses a module must not reach unless a rule names them (anti-SSRF)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip in METADATA_ADDRESSES or not ip.is_global or ip.is_multicast


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
    return host


def _ip_or_none(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
