"""CURVE on every endpoint that leaves the machine: server keys, client keys, allow-lists.

Every listening endpoint (the daemon's control endpoint, the broker's three
ports, the logger's reliable path and its history endpoint) may carry a
``curve:`` section. Without one it must bind loopback only (a config error
otherwise); with one, ZeroMQ CURVE encrypts the link and a ZAP handler
admits only the client keys on the section's allow-list, each with a role::

    bus:
      host: 192.168.10.1
      curve:
        server_public: "<z85>"               # every client needs the server's public key
        server_secret_file: keys/broker.key_secret   # only where the server runs
        clients:                             # allow-list: client public key -> role
          "<z85>": publisher                 # broker roles: publisher, subscriber
          "<z85>": subscriber
    identity:                                # this host's own key pair, used as a client
      public_key: "<z85>"
      secret_key_file: keys/fridge1.key_secret

Roles per endpoint: control ``operator`` / ``read-only``; broker
``publisher`` (its publish port) / ``subscriber`` (subscribe and snapshot
ports; a publisher may also subscribe); logger reliable path: the name of
the daemon the key may archive as (its identity on that path); history:
``reader`` (any allowed key may read history).

Keys are 40-character z85 text (``zmq.curve_keypair()``), given inline or as
files in ZeroMQ's certificate format (``zmq.auth.create_certificates``;
``qupdaq keys`` writes them). A refused key is logged and counted by the
:class:`Gatekeeper`; the connection never completes its handshake.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from daq.errors import ConfigError

log = logging.getLogger(__name__)

KEY_LENGTH = 40


def is_loopback_url(url: str) -> bool:
    """True when a ZeroMQ endpoint is reachable from this machine only."""
    parsed = urlparse(url)
    if parsed.scheme in ("inproc", "ipc"):
        return True
    host = parsed.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name or '*': assume reachable from outside


def _check_key(key: str, what: str) -> str:
    if len(key) != KEY_LENGTH:
        raise ValueError(f"{what} {key[:12]}... is not a {KEY_LENGTH}-character z85 key")
    try:
        zmq.utils.z85.decode(key.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise ValueError(f"{what} {key[:12]}... is not z85 text") from None
    return key


def load_secret(inline: str | None, file: str | None, base_dir: str, what: str) -> bytes:
    """A secret key (z85 bytes) given inline or in a certificate file.

    Raises:
        ConfigError: the file cannot be read or holds no secret key.
    """
    if inline is not None:
        return _check_key(inline, what).encode("ascii")
    path = Path(file or "").expanduser()
    if not path.is_absolute() and base_dir:
        path = Path(base_dir) / path
    try:
        _, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the {what}: {exc}", file=str(path)) from None
    if secret is None:
        raise ConfigError(f"{path} holds no secret key (need the .key_secret file)",
                          file=str(path))
    return secret


@dataclass(frozen=True)
class CurveServerConfig:
    """The ``curve:`` section of one listening endpoint (see the module docstring).

    ``server_secret``/``server_secret_file`` are needed only where the server
    runs; ``server_public`` where clients connect from (it may be derived from
    the secret). ``clients`` maps allowed client public keys to roles.
    """

    server_public: str | None = None
    server_secret: str | None = None
    server_secret_file: str | None = None
    clients: dict[str, str] = field(default_factory=dict)
    # The config file's directory (relative key files are taken from it); not a YAML key.
    base_dir: str = field(default="", init=False, compare=False)

    def __post_init__(self) -> None:
        if self.server_secret is not None and self.server_secret_file is not None:
            raise ValueError("give server_secret or server_secret_file, not both")
        if self.server_public is not None:
            _check_key(self.server_public, "server_public")
        if self.server_secret is not None:
            _check_key(self.server_secret, "server_secret")
        if (self.server_public is None and self.server_secret is None
                and self.server_secret_file is None):
            raise ValueError("a curve section needs server_public (clients) or a server "
                             "secret (the server)")
        for key in self.clients:
            _check_key(key, "client key")

    def secret(self) -> bytes:
        """The server's secret key (the server side only)."""
        if self.server_secret is None and self.server_secret_file is None:
            raise ConfigError("this endpoint's curve section has no server secret "
                              "(server_secret or server_secret_file) on this host")
        return load_secret(self.server_secret, self.server_secret_file, self.base_dir,
                           "server secret key")

    def public(self) -> bytes:
        """The server's public key, given or derived from the secret."""
        if self.server_public is not None:
            return self.server_public.encode("ascii")
        return zmq.curve_public(self.secret())


@dataclass(frozen=True)
class IdentityConfig:
    """The ``identity:`` section: this host's key pair for connecting to CURVE endpoints."""

    public_key: str
    secret_key: str | None = None
    secret_key_file: str | None = None
    base_dir: str = field(default="", init=False, compare=False)

    def __post_init__(self) -> None:
        _check_key(self.public_key, "identity.public_key")
        if (self.secret_key is None) == (self.secret_key_file is None):
            raise ValueError("give exactly one of secret_key or secret_key_file")

    def secret(self) -> bytes:
        return load_secret(self.secret_key, self.secret_key_file, self.base_dir,
                           "identity secret key")


@dataclass(frozen=True)
class ClientKeys:
    """What a client socket needs to reach a CURVE server: the server's key and its own pair."""

    server_public: bytes
    public: bytes
    secret: bytes


def client_keys(server: CurveServerConfig | None,
                identity: IdentityConfig | None) -> ClientKeys | None:
    """Keys for connecting to an endpoint with ``server`` curve settings (None: plain).

    Raises:
        ConfigError: the endpoint needs CURVE but this config has no ``identity``.
    """
    if server is None:
        return None
    if identity is None:
        raise ConfigError("this endpoint requires CURVE: give the config an identity section "
                          "(public_key and secret_key_file of this host)")
    return ClientKeys(server.public(), identity.public_key.encode("ascii"), identity.secret())


def arm_client(sock: zmq.Socket, keys: ClientKeys | None) -> None:
    """Make ``sock`` a CURVE client when ``keys`` are given (before connecting)."""
    if keys is None:
        return
    sock.curve_serverkey = keys.server_public
    sock.curve_publickey = keys.public
    sock.curve_secretkey = keys.secret


def require_curve_off_loopback(url: str, curve: CurveServerConfig | None, what: str) -> None:
    """Raise ValueError when ``url`` is reachable from outside and has no CURVE section."""
    if curve is None and not is_loopback_url(url):
        raise ValueError(f"{what} {url} is not loopback: it needs CURVE keys (a curve section "
                         "with the server secret and a clients allow-list)")


class Gatekeeper:
    """One ZAP handler per context: per-domain allow-lists, refusals counted.

    Args:
        context: the context whose server sockets it guards.
    """

    _lock = threading.Lock()
    _by_context: dict[int, Gatekeeper] = {}

    def __init__(self, context: zmq.Context) -> None:
        self._auth = ThreadAuthenticator(context)
        self._auth.start()
        self.refused: dict[str, int] = {}
        self._allowed: dict[str, Mapping[str, str]] = {}

    @classmethod
    def for_context(cls, context: zmq.Context) -> Gatekeeper:
        """The context's gatekeeper, started on first use."""
        with cls._lock:
            keeper = cls._by_context.get(id(context))
            if keeper is None:
                keeper = cls._by_context[id(context)] = cls(context)
            return keeper

    def allow(self, domain: str, clients: Mapping[str, str]) -> None:
        """Admit ``clients`` (public key -> role) on sockets with ``zap_domain = domain``."""
        self._allowed[domain] = dict(clients)
        self._auth.configure_curve_callback(domain=domain, credentials_provider=_Check(self,
                                                                                      domain))

    def role(self, domain: str, key: str) -> str | None:
        """The role of an admitted key, or None."""
        return self._allowed.get(domain, {}).get(key)

    def arm_server(self, sock: zmq.Socket, domain: str, curve: CurveServerConfig,
                   clients: Mapping[str, str] | None = None) -> None:
        """Make ``sock`` a CURVE server (before binding) admitting ``clients``
        (``curve.clients`` by default)."""
        self.allow(domain, curve.clients if clients is None else clients)
        secret = curve.secret()
        sock.zap_domain = domain.encode("ascii")
        sock.curve_secretkey = secret
        sock.curve_publickey = zmq.curve_public(secret)
        sock.curve_server = True

    @classmethod
    def release(cls, context: zmq.Context) -> None:
        """Stop the context's gatekeeper (before terminating the context)."""
        with cls._lock:
            keeper = cls._by_context.pop(id(context), None)
        if keeper is not None:
            keeper._auth.stop()


class _Check:
    """The ZAP credentials callback of one domain."""

    def __init__(self, keeper: Gatekeeper, domain: str) -> None:
        self.keeper = keeper
        self.domain = domain

    def callback(self, domain: str, key: bytes) -> bool:
        text = key.decode("ascii", "replace")
        if text in self.keeper._allowed.get(self.domain, {}):
            return True
        self.keeper.refused[self.domain] = self.keeper.refused.get(self.domain, 0) + 1
        log.warning("%s: refused CURVE client key %s... (not on the allow-list)", self.domain,
                    text[:8])
        return False


def user_key(frame: zmq.Frame) -> str:
    """The CURVE public key (z85) of the peer that sent ``frame`` ("" without CURVE)."""
    try:
        return str(frame.get("User-Id"))
    except zmq.ZMQError:
        return ""
