"""The egress matcher: rule parsing, one-label wildcards, ports, schemes, anti-SSRF addresses."""

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.core.capabilities.egress import (
    ALLOW_ALL,
    Target,
    address_allowed,
    embedded_ipv4,
    is_special_address,
    match,
    parse_rule,
    parse_target,
)

label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
hostname = st.lists(label, min_size=1, max_size=4).map(".".join)
scheme = st.sampled_from(["http", "https"])
port = st.integers(1, 65535)


def allows(rule: str, url: str) -> bool:
    return match([parse_rule(rule)], parse_target(url)) is not None


def test_exact_rule():
    assert allows("https://api.example.com:443", "https://api.example.com/v1")
    assert allows("https://api.example.com", "https://API.Example.com./x")  # default port, case, trailing dot
    assert not allows("https://api.example.com:443", "http://api.example.com/")
    assert not allows("https://api.example.com:443", "https://api.example.com:8443/")


def test_wildcard_is_one_label():
    rule = "https://*.example.com:443"
    assert allows(rule, "https://a.example.com/")
    assert not allows(rule, "https://example.com/")  # apex not matched
    assert not allows(rule, "https://a.b.example.com/")  # never crosses a dot
    assert not allows(rule, "https://evil-example.com/")
    assert not allows(rule, "https://a.example.com.evil.net/")


def test_port_and_scheme_wildcards():
    assert allows("http://localhost:*", "http://localhost:1234/")
    assert allows("*://api.example.com:8080", "https://api.example.com:8080/")


@pytest.mark.parametrize(
    "bad",
    ["", "*", "*://*:*", "api.example.com", "ftp://x.com:21", "https://ex*.com:443", "https://x.com:0",
     "https://x.com:99999", "https://x.com/path", "https://user@x.com", "https://*.*:443", "tcp://x.com", " https://x.com"],
)
def test_bad_rules_are_refused_with_a_reason(bad):
    with pytest.raises(ValueError) as err:
        parse_rule(bad)
    assert str(err.value)


def test_allow_all_must_be_spelled_out():
    with pytest.raises(ValueError, match=ALLOW_ALL):
        parse_rule("*://*:*")


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.5.4", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1",
     "fe80::1", "fd00:ec2::254", "::ffff:127.0.0.1", "224.0.0.1"],
)
def test_special_addresses(address):
    ip = ipaddress.ip_address(address)
    assert is_special_address(ip)
    target = Target("http", "service.test", 80)
    assert not address_allowed([parse_rule("http://service.test:80")], target, ip)


def test_named_address_is_allowed():
    ip = ipaddress.ip_address("127.0.0.1")
    assert address_allowed([parse_rule("http://127.0.0.1:8080")], Target("http", "127.0.0.1", 8080), ip)
    assert not address_allowed([parse_rule("http://127.0.0.1:8080")], Target("http", "127.0.0.1", 9090), ip)
    assert address_allowed([], Target("https", "example.com", 443), ipaddress.ip_address("93.184.216.34"))


@given(hostname, scheme, port)
def test_exact_rule_matches_exactly_its_target(host, sch, prt):
    rule = parse_rule(f"{sch}://{host}:{prt}")
    assert rule.matches(sch, host, prt)
    assert not rule.matches(sch, host, prt % 65535 + 1)
    assert not rule.matches("https" if sch == "http" else "http", host, prt)
    assert not rule.matches(sch, "x" + host, prt)


@given(label, hostname, hostname, port)
def test_wildcard_matches_one_label_only(first, base, extra, prt):
    base += ".example"  # a registrable domain: a wildcard over a public suffix is refused (below)
    rule = parse_rule(f"https://*.{base}:{prt}")
    assert rule.matches("https", f"{first}.{base}", prt)
    assert not rule.matches("https", base, prt)
    assert not rule.matches("https", f"{extra}.{first}.{base}", prt)
    assert not rule.matches("https", f"{first}-{base}", prt)


@given(st.lists(hostname, max_size=5), hostname, scheme, port)
def test_empty_or_unrelated_rules_deny(others, host, sch, prt):
    rules = [parse_rule(f"{sch}://{o}:{prt}") for o in others if o != host]
    assert match(rules, Target(sch, host, prt)) is None


@given(st.text(max_size=40))
def test_parse_rule_raises_only_value_error(text):
    try:
        parse_rule(text)
    except ValueError:
        pass


# IPv6 forms that carry an IPv4 address are judged by that address ------------------------------

@pytest.mark.parametrize(
    "address",
    [
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::ffff:0:7f00:1",  # IPv4-translated (SIIT) 127.0.0.1
        "64:ff9b::7f00:1",  # NAT64 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 169.254.169.254 (metadata)
        "64:ff9b:1::808:808",  # NAT64 local-use prefix: never global
        "2002:7f00:1::",  # 6to4 127.0.0.1
        "2002:a00:1::1",  # 6to4 10.0.0.1
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
        "::ffff:a9fe:a9fe",  # mapped 169.254.169.254
    ],
)
def test_ipv6_forms_embedding_a_special_ipv4_are_special(address):
    ip = ipaddress.ip_address(address)
    assert is_special_address(ip)
    assert not address_allowed([parse_rule("http://service.test:80")], Target("http", "service.test", 80), ip)


@pytest.mark.parametrize("address", ["::ffff:808:808", "64:ff9b::808:808", "2002:808:808::1", "2606:4700::1111"])
def test_ipv6_forms_embedding_a_global_ipv4_stay_reachable(address):
    assert not is_special_address(ipaddress.ip_address(address))


special_v4 = st.sampled_from(["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", "0.0.0.0/8"]).flatmap(
    lambda net: st.integers(0, ipaddress.ip_network(net).num_addresses - 1).map(lambda i: ipaddress.ip_network(net)[i])
)
embeddings = {
    "mapped": lambda v4: ipaddress.IPv6Address(0xFFFF << 32 | int(v4)),
    "compatible": lambda v4: ipaddress.IPv6Address(int(v4)),
    "translated": lambda v4: ipaddress.IPv6Address(0xFFFF << 48 | int(v4)),
    "nat64": lambda v4: ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(v4)),
    "6to4": lambda v4: ipaddress.IPv6Address(0x2002 << 112 | int(v4) << 80 | 1),
}


@given(special_v4, st.sampled_from(sorted(embeddings)))
def test_any_special_ipv4_is_special_in_every_ipv6_embedding(v4, form):
    ip = embeddings[form](v4)
    assert embedded_ipv4(ip) and v4 in embedded_ipv4(ip)
    assert is_special_address(ip)
    assert not address_allowed([parse_rule("http://service.test:80")], Target("http", "service.test", 80), ip)


# A wildcard over a whole public suffix is refused like * ---------------------------------------

@pytest.mark.parametrize(
    "rule",
    ["https://*.com", "https://*.co.uk:443", "http://*.github.io", "*://*.com.au:*", "https://api.*.com", "https://*.xn--p1ai", "https://*.test",
     "https://*.foo.kawasaki.jp"],  # *.kawasaki.jp is a wildcard entry of the list: foo.kawasaki.jp is a suffix
)
def test_a_wildcard_over_a_public_suffix_is_refused(rule):
    with pytest.raises(ValueError, match="public suffix") as err:
        parse_rule(rule)
    assert ALLOW_ALL in str(err.value)


@pytest.mark.parametrize("rule", ["https://*.example.com", "https://*.example.co.uk", "https://*.me.github.io", "https://api.example.com"])
def test_a_wildcard_under_a_registrable_domain_is_fine(rule):
    parse_rule(rule)


public_suffix = st.sampled_from(["com", "net", "org", "uk", "co.uk", "com.au", "github.io", "de", "jp"])


@given(public_suffix, scheme, port)
def test_no_rule_wildcards_a_whole_public_suffix(suffix, sch, prt):
    with pytest.raises(ValueError):
        parse_rule(f"{sch}://*.{suffix}:{prt}")
    parse_rule(f"{sch}://*.example.{suffix}:{prt}")  # one registrable domain: allowed
