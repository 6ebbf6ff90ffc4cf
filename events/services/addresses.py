"""Where a webhook may be sent: https to a public address, checked when saved and before every delivery."""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeUrl(Exception):
    """The URL is not https, or it points at a private, loopback or link-local address."""


def _address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved)


def url_resolve(url: str) -> tuple[str, str, int, list[str]]:
    """(scheme, host, port, addresses to connect to) of a webhook URL, or UnsafeUrl.

    Called when the endpoint is saved and again before every delivery, whose
    connection then goes to one of exactly these addresses: a DNS answer that
    changes to a private address after the check (rebinding) is never used.
    ``settings.WEBHOOKS_ALLOW_INSECURE`` allows http and any address.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"Not a valid URL ({exc}).") from None
    insecure = settings.WEBHOOKS_ALLOW_INSECURE
    allowed_schemes = ("https", "http") if insecure else ("https",)
    if parts.scheme not in allowed_schemes:
        raise UnsafeUrl("The URL must use https.")
    host = parts.hostname
    if not host or parts.username or parts.password:
        raise UnsafeUrl("The URL needs a host and must not carry credentials.")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeUrl(f"The host {host} does not resolve.") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not insecure and (not addresses or not all(_address_allowed(address) for address in addresses)):
        raise UnsafeUrl("The URL must not point at a private, loopback or link-local address.")
    return parts.scheme, host, port, addresses
