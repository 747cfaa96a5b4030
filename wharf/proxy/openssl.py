"""The few OpenSSL calls the `ssl` module does not offer, made through ctypes on the very
libssl that `_ssl` is linked to.

- Session-ticket keys (`SSL_CTX_set_tlsext_ticket_keys`, a macro for `SSL_CTX_ctrl(ctx, 59,
  80, key)` in OpenSSL 3; nginx's `ssl_session_ticket_key`): every worker encrypts tickets
  with the daemon's key, so a client resumes on any of them.
- The ClientHello callback (`SSL_CTX_set_client_hello_cb`), which sees the offered ALPN list
  before the SNI callback runs: TLS-ALPN-01 needs to know whether a client asked for
  `acme-tls/1`, and Python's `sni_callback` cannot tell.
- `SSL_do_handshake` and a close_notify that does not wait for the peer's (`Direct`, as
  nginx's `ngx_ssl_shutdown`), which `tlsconn` calls for each connection without the
  exceptions the `ssl` module raises on those paths.

A Python `SSLContext` and `SSLObject` hold their `SSL_CTX *` / `SSL *` right after the object
header (CPython's `PySSLContext` and `PySSLSocket` structs, unchanged since 3.7); each pointer
is checked against OpenSSL before use (the options of the context; the context of the
connection, which `Direct` checks once, at import: the offset is the interpreter's). If
anything here fails, `available()` is False and the caller goes on without: per-worker
tickets, no TLS-ALPN-01, handshakes through the `ssl` module.
"""

from __future__ import annotations

import ctypes
import logging
import re
import ssl
import sys
from collections.abc import Callable

log = logging.getLogger("wharf.proxy")

_SET_TICKET_KEYS = 59  # SSL_CTRL_SET_TLSEXT_TICKET_KEYS
_SET_SESS_CACHE_MODE = 44  # SSL_CTRL_SET_SESS_CACHE_MODE
_SESS_CACHE_OFF = 0
TICKET_KEY_BYTES = 80  # OpenSSL >= 1.1: 16 name + 32 HMAC + 32 AES
_EXT_ALPN = 16  # TLSEXT_TYPE_application_layer_protocol_negotiation
_CLIENT_HELLO_SUCCESS = 1
_HEAD = sys.getsizeof(object())  # PyObject_HEAD: refcount and type (16 on 64-bit builds)
SSL_OFFSET = _HEAD + ctypes.sizeof(ctypes.c_void_p)  # in a PySSLSocket, after its Socket

ClientHelloCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p,
                                       ctypes.POINTER(ctypes.c_int), ctypes.c_void_p)


def _load() -> ctypes.CDLL | None:
    """libssl as `_ssl` loaded it (its path from /proc/self/maps), or None."""
    import _ssl  # noqa: F401  (loads libssl into this process)

    try:
        with open("/proc/self/maps") as f:
            found = re.search(r"(/\S*/libssl\.so[.\d]*)\n", f.read())
        if found is None:
            return None
        lib = ctypes.CDLL(found.group(1))
        lib.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long,
                                     ctypes.c_void_p]
        lib.SSL_CTX_ctrl.restype = ctypes.c_long
        lib.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_get_options.restype = ctypes.c_uint64
        lib.SSL_get_SSL_CTX.argtypes = [ctypes.c_void_p]
        lib.SSL_get_SSL_CTX.restype = ctypes.c_void_p
        lib.SSL_CTX_set_client_hello_cb.argtypes = [ctypes.c_void_p, ClientHelloCallback,
                                                    ctypes.c_void_p]
        lib.SSL_CTX_set_client_hello_cb.restype = None
        lib.SSL_client_hello_get0_ext.argtypes = [
            ctypes.c_void_p, ctypes.c_uint, ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte)),
            ctypes.POINTER(ctypes.c_size_t)]
        lib.SSL_client_hello_get0_ext.restype = ctypes.c_int
        return lib
    except (OSError, AttributeError):
        return None


_lib = _load()
_warned: set[str] = set()


class Direct:
    """A connection's handshake and close_notify by direct calls on its `SSL *`, for
    `tlsconn`: the `ssl` module raises SSLWantReadError each time a handshake waits for the
    peer (once per connection) and again in `shutdown()`, which always waits for the peer's
    close_notify; making and catching each costs some 10,000 instructions, a tenth of what
    Python adds to a handshake (bench/callgrind.py --handshakes). Calls keep the GIL
    (`PyDLL`): each is short, and the SNI and ClientHello callbacks run inside them.
    `tlsconn` makes the calls itself (a Python method around each would cost a frame)."""

    WANT_READ = 2  # SSL_ERROR_WANT_READ
    RECEIVED_SHUTDOWN = 2  # for SSL_set_shutdown: do not wait for the peer's close_notify

    def __init__(self, libssl: str, libcrypto: str) -> None:
        ssl_lib, crypto = ctypes.PyDLL(libssl), ctypes.PyDLL(libcrypto)
        for name, args, result in (("SSL_do_handshake", [ctypes.c_void_p], ctypes.c_int),
                                   ("SSL_get_error", [ctypes.c_void_p, ctypes.c_int],
                                    ctypes.c_int),
                                   ("SSL_set_shutdown", [ctypes.c_void_p, ctypes.c_int], None),
                                   ("SSL_shutdown", [ctypes.c_void_p], ctypes.c_int),
                                   ("SSL_get_SSL_CTX", [ctypes.c_void_p], ctypes.c_void_p)):
            function = getattr(ssl_lib, name)
            function.argtypes, function.restype = args, result
        crypto.ERR_clear_error.argtypes, crypto.ERR_clear_error.restype = [], None
        self.do_handshake: Callable[[int], int] = ssl_lib.SSL_do_handshake
        self.get_error: Callable[[int, int], int] = ssl_lib.SSL_get_error
        self.set_shutdown: Callable[[int, int], None] = ssl_lib.SSL_set_shutdown
        self.shutdown: Callable[[int], int] = ssl_lib.SSL_shutdown
        self.clear_errors: Callable[[], None] = crypto.ERR_clear_error
        self.pointer_at: Callable[[int], ctypes.c_void_p] = ctypes.c_void_p.from_address
        self._get_ctx = ssl_lib.SSL_get_SSL_CTX

    def works(self) -> bool:
        """Whether a connection's `SSL *` is at SSL_OFFSET in its `_ssl._SSLSocket` (what
        `tlsconn` reads, with `pointer_at`): checked once, on a connection object of its
        own, as the offset is the interpreter's, the same for every one."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls = ctx._wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(),  # type: ignore[attr-defined]
                            server_side=True, server_hostname=None)
        found = self.pointer_at(id(tls) + SSL_OFFSET).value
        return bool(found) and self._get_ctx(found) == context_pointer(ctx)


def _direct() -> Direct | None:
    if _lib is None or _lib._name is None:
        return None
    crypto = re.sub(r"libssl(\.so[.\d]*)$", r"libcrypto\1", _lib._name)
    try:
        direct = Direct(_lib._name, crypto)
    except (OSError, AttributeError):
        return None
    return direct if direct.works() else None


def _warn_once(what: str) -> None:
    if what not in _warned:
        _warned.add(what)
        log.warning("wharf-proxy: %s", what)


def available() -> bool:
    """Whether the calls of this module can be made here."""
    return _lib is not None


def context_pointer(ctx: ssl.SSLContext) -> int | None:
    """The `SSL_CTX *` of a Python context, or None if it cannot be found for sure."""
    if _lib is None:
        return None
    pointer = ctypes.c_void_p.from_address(id(ctx) + _HEAD).value
    if not pointer or _lib.SSL_CTX_get_options(pointer) != int(ctx.options):
        return None
    return pointer


def connection_pointer(obj: ssl.SSLObject, ctx: ssl.SSLContext) -> int | None:
    """The `SSL *` of a connection whose context is `ctx`, or None. `obj` is an
    `ssl.SSLObject` or the `_ssl._SSLSocket` it wraps (what `tlsconn` drives)."""
    inner = getattr(obj, "_sslobj", obj)
    ctx_pointer = context_pointer(ctx)
    if _lib is None or inner is None or ctx_pointer is None:
        return None
    pointer = ctypes.c_void_p.from_address(id(inner) + SSL_OFFSET).value
    if not pointer or _lib.SSL_get_SSL_CTX(pointer) != ctx_pointer:
        return None
    return pointer


def set_ticket_key(ctx: ssl.SSLContext, key: bytes) -> bool:
    """Have `ctx` encrypt and decrypt session tickets with `key` (80 bytes); False (logged
    once) if that cannot be done here, and the context keeps OpenSSL's own random key."""
    pointer = context_pointer(ctx)
    if _lib is None or pointer is None or len(key) != TICKET_KEY_BYTES:
        _warn_once("cannot set shared session-ticket keys here; each worker uses its own "
                   "(a client that resumes on another worker does a full handshake)")
        return False
    buffer = ctypes.create_string_buffer(key, TICKET_KEY_BYTES)
    if _lib.SSL_CTX_ctrl(pointer, _SET_TICKET_KEYS, TICKET_KEY_BYTES, buffer) != 1:
        _warn_once("OpenSSL refused the session-ticket key; each worker uses its own")
        return False
    return True


def no_session_cache(ctx: ssl.SSLContext) -> bool:
    """Keep no server-side session cache in `ctx` (`SSL_CTX_set_session_cache_mode(ctx,
    SSL_SESS_CACHE_OFF)`, nginx's default `ssl_session_cache none`): resumption is by
    tickets alone, which every worker decrypts. Python leaves OpenSSL's default, an internal
    cache of up to 20,480 sessions per context that each full handshake adds to and that is
    swept every 255 handshakes. False if it cannot be done here (the cache stays)."""
    pointer = context_pointer(ctx)
    if _lib is None or pointer is None:
        return False
    _lib.SSL_CTX_ctrl(pointer, _SET_SESS_CACHE_MODE, _SESS_CACHE_OFF, None)
    return True


def offered_alpn(ssl_pointer: int) -> list[bytes]:
    """The ALPN protocols of the ClientHello being handled (inside the ClientHello callback)."""
    assert _lib is not None
    data = ctypes.POINTER(ctypes.c_ubyte)()
    size = ctypes.c_size_t()
    if not _lib.SSL_client_hello_get0_ext(ssl_pointer, _EXT_ALPN, ctypes.byref(data),
                                          ctypes.byref(size)):
        return []
    raw = ctypes.string_at(data, size.value)
    protocols, at = [], 2  # a 2-byte length, then 1-byte length + name, each
    while at < len(raw):
        length = raw[at]
        protocols.append(raw[at + 1:at + 1 + length])
        at += 1 + length
    return protocols


def set_client_hello_callback(ctx: ssl.SSLContext,
                              callback: Callable[[int], None] | None) -> object | None:
    """Call `callback(SSL *)` at every ClientHello on `ctx` (None removes it). Returns the
    ctypes callback object, which the caller must keep alive while it is set; None if it
    could not be set."""
    pointer = context_pointer(ctx)
    if _lib is None or pointer is None:
        if callback is not None:
            _warn_once("cannot see the ClientHello here: TLS-ALPN-01 challenges go unanswered")
        return None
    if callback is None:
        _lib.SSL_CTX_set_client_hello_cb(pointer, ClientHelloCallback(), None)
        return None
    hook = callback

    def on_client_hello(ssl_pointer: int | None, alert: object, arg: object) -> int:
        try:
            if ssl_pointer:
                hook(ssl_pointer)
        except Exception:  # a bug here must not fail handshakes
            log.exception("wharf-proxy: ClientHello callback")
        return _CLIENT_HELLO_SUCCESS

    c_callback = ClientHelloCallback(on_client_hello)
    _lib.SSL_CTX_set_client_hello_cb(pointer, c_callback, None)
    return c_callback


DIRECT: Direct | None = _direct()  # after context_pointer, which its check calls
