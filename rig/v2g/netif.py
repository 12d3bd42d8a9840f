"""Network interface helpers for V2G: interface index, IPv6 link-local addresses, endpoint text.

ISO 15118 runs over IPv6 link-local addresses on the powerline interface, so every socket address
needs the interface's scope id, and the SDP server answers with the interface's own link-local
address. Linux only: addresses come from /proc (no getifaddrs in the stdlib). Reads happen when a
socket is made, never per message.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address
from pathlib import Path

#: Per-thread view first: a test may enter a network namespace on one thread (setns).
_IF_INET6 = (Path("/proc/thread-self/net/if_inet6"), Path("/proc/net/if_inet6"))

# Flags of an address in /proc/net/if_inet6 (linux/if_addr.h): not usable for a server while
# duplicate address detection runs or after it failed.
_IFA_F_DADFAILED = 0x08
_IFA_F_TENTATIVE = 0x40
_SCOPE_LINK = 0x20


class InterfaceError(OSError):
    """The named interface does not exist here, or has no usable link-local address."""


@dataclass(frozen=True, slots=True)
class InterfaceAddress:
    """One IPv6 address of an interface, as the kernel lists it."""

    address: IPv6Address
    interface: str
    index: int
    prefix_length: int
    scope: int
    flags: int

    @property
    def usable(self) -> bool:
        return not self.flags & (_IFA_F_TENTATIVE | _IFA_F_DADFAILED)


def interface_index(interface: str) -> int:
    """The kernel's index of `interface` (the scope id of its link-local addresses)."""
    try:
        return socket.if_nametoindex(interface)
    except OSError as exc:
        raise InterfaceError(f"no network interface named {interface!r} here") from exc


def ipv6_addresses(interface: str | None = None) -> list[InterfaceAddress]:
    """Every IPv6 address the kernel lists (for one interface if named), in its order."""
    for path in _IF_INET6:
        try:
            text = path.read_text(encoding="ascii")
        except OSError:
            continue
        break
    else:
        return []
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 6:
            continue
        hex_address, index, prefix, scope, flags, name = fields
        if interface is not None and name != interface:
            continue
        found.append(
            InterfaceAddress(
                address=IPv6Address(bytes.fromhex(hex_address)),
                interface=name,
                index=int(index, 16),
                prefix_length=int(prefix, 16),
                scope=int(scope, 16),
                flags=int(flags, 16),
            )
        )
    return found


def link_local_address(interface: str) -> IPv6Address:
    """The first usable link-local address of `interface` (what an SDP server announces)."""
    interface_index(interface)  # a precise error for a missing interface
    for entry in ipv6_addresses(interface):
        if entry.scope == _SCOPE_LINK and entry.address.is_link_local and entry.usable:
            return entry.address
    raise InterfaceError(f"interface {interface!r} has no usable IPv6 link-local address")


def socket_address(
    host: str | IPv6Address, port: int, interface: str | None = None
) -> tuple[int, tuple[str, int] | tuple[str, int, int, int]]:
    """(address family, sockaddr) for `host`; a link-local IPv6 host needs `interface`."""
    address = ip_address(str(host))
    if address.version == 4:
        return socket.AF_INET, (str(address), port)
    assert isinstance(address, IPv6Address)
    scope = 0
    if address.is_link_local or address.is_multicast:
        if interface is None:
            raise InterfaceError(f"{address} is link-scoped: name the interface to reach it on")
        scope = interface_index(interface)
    elif interface is not None:
        scope = interface_index(interface)
    return socket.AF_INET6, (str(address), port, 0, scope)


def endpoint_text(sockaddr: object, interface: str | None = None) -> str:
    """A peer as text: "[fe80::2%veth0]:57122", "[::1]:4000" or "127.0.0.1:4000". A scoped
    address is named by `interface` when the caller knows it (the kernel's index names an
    interface of the namespace we run in, which need not be the socket's)."""
    if isinstance(sockaddr, tuple) and len(sockaddr) >= 2:
        host, port = str(sockaddr[0]), sockaddr[1]
        if len(sockaddr) == 4 and sockaddr[3] and "%" not in host:
            if interface is None:
                try:
                    interface = socket.if_indextoname(int(sockaddr[3]))
                except OSError:
                    interface = str(sockaddr[3])
            host = f"{host}%{interface}"
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(sockaddr)
