"""The links the server prints: the teacher's and the students', one for each address of
this machine a class can open (as Jupyter prints them), the machine's name last.

Runs in the server (app.web.main.serve), once its socket is bound: with `--port 0` the port in
the links is the one the kernel chose. Bound to every interface (`0.0.0.0`, `::`), a
student's laptop can seldom resolve the machine's name, so each of its addresses gets a
link: IPv4 first, then IPv6 (a `::` socket that also takes IPv4, the Linux default, gets
both), loopback and IPv6 link-local addresses left out (no other machine reaches the
first; a browser cannot open the second without its interface, `%eth0`). Standard library
only: the addresses come from the kernel (SIOCGIFCONF for IPv4, /proc/net/if_inet6).
"""

from __future__ import annotations

import array
import fcntl
import ipaddress
import socket
import struct

SIOCGIFCONF = 0x8912  # linux/sockios.h
IFREQ_SIZE = 40 if struct.calcsize("P") == 8 else 32  # sizeof(struct ifreq)
IFREQ_ADDRESS_AT = 20  # ifr_name[16], then a sockaddr_in: family, port, address
EVERY_INTERFACE = ("0.0.0.0", "::")


def link_hosts(host: str, *, takes_ipv4: bool = True) -> list[str]:
    """The hosts of the links for a server bound to `host`, as a URL writes them.

    `takes_ipv4`: a `::` socket that also accepts IPv4 (IPV6_V6ONLY off).
    """
    if host not in EVERY_INTERFACE:
        return [f"[{host}]" if ":" in host else host]
    found = ipv4_addresses() if host == "0.0.0.0" or takes_ipv4 else []
    if host == "::":
        found += [f"[{a}]" for a in ipv6_addresses()]
    return [*found, socket.gethostname()]


def ipv4_addresses() -> list[str]:
    """This machine's IPv4 addresses but loopback, in the kernel's order of interfaces."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        size = 64 * IFREQ_SIZE
        while True:  # struct ifconf: how much room, and where; the kernel says what it used
            room = array.array("B", bytes(size))
            ifconf = struct.pack("iP", size, room.buffer_info()[0])
            used = struct.unpack("iP", fcntl.ioctl(s.fileno(), SIOCGIFCONF, ifconf))[0]
            if used < size:
                break
            size *= 2  # it may have been cut: ask again with more room
    data = room.tobytes()[:used]
    addresses = []
    for at in range(0, used, IFREQ_SIZE):
        address = socket.inet_ntoa(data[at + IFREQ_ADDRESS_AT:at + IFREQ_ADDRESS_AT + 4])
        if not ipaddress.IPv4Address(address).is_loopback and address not in addresses:
            addresses.append(address)
    return addresses


def ipv6_addresses() -> list[str]:
    """This machine's IPv6 addresses of global scope (what another machine can open)."""
    addresses = []
    try:
        with open("/proc/net/if_inet6") as f:  # address, index, prefix, scope, flags, name
            lines = f.read().splitlines()
    except OSError:  # no IPv6 in this kernel
        return []
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or fields[3] != "00":  # 00 global; 10 host, 20 link, 40 site
            continue
        address = str(ipaddress.IPv6Address(bytes.fromhex(fields[0])))
        if address not in addresses:
            addresses.append(address)
    return addresses


def print_links(hosts: list[str], port: int, token: str | None, viewer: str | None,
                generated: bool) -> None:
    """The teacher's links, then the students', a line each; a token the teacher gave is
    never printed (a terminal is often on the projector): only a generated one must be."""
    bases = [f"http://{host}:{port}/" for host in hosts]
    if token is None or viewer is None:
        say("procscope: open ", bases)
        return
    given = "…"
    say("procscope: teacher (can start runs): ",
        [f"{base}?token={token if generated else given}" for base in bases],
        "" if generated else " (your --token-file, $PROCSCOPE_TOKEN or --token)")
    say("procscope: students (watch only):    ", [f"{base}?token={viewer}" for base in bases])


def say(head: str, links: list[str], note: str = "") -> None:
    """The first link after `head` (with `note`), each other one under it."""
    for i, link in enumerate(links):
        print((head if i == 0 else " " * len(head)) + link + (note if i == 0 else ""),
              flush=True)
