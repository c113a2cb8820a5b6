//! Peer addresses: [`PeerAddr`], what every call that names a peer takes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use aranya_quic_sys as sys;

use crate::error::{ErrorKind, QuicMessageError};

/// An address as the C API takes it: NUL-terminated text of at most
/// `ARANYA_QUIC_PEER_ADDR_MAX` bytes with the NUL, kept on the stack so
/// that a send allocates nothing.
#[derive(Clone)]
pub struct CAddr {
    buf: [u8; sys::ARANYA_QUIC_PEER_ADDR_MAX],
    len: usize,
}

impl CAddr {
    pub(crate) fn from_socket(addr: SocketAddr) -> Result<CAddr, QuicMessageError> {
        Self::write(format_args!("{addr}"))
    }

    /// A `host:port` (or `[v6]:port`, or `ip:port`) string, checked only
    /// for what the C string itself needs: no NUL inside and room for one
    /// after it. The library checks the rest.
    pub(crate) fn from_str(addr: &str) -> Result<CAddr, QuicMessageError> {
        if addr.as_bytes().contains(&0) {
            return Err(QuicMessageError::new(ErrorKind::BadAddress, format!("address {addr:?} contains a NUL byte")));
        }
        Self::write(format_args!("{addr}"))
    }

    fn write(args: std::fmt::Arguments<'_>) -> Result<CAddr, QuicMessageError> {
        use std::io::Write;
        let mut buf = [0u8; sys::ARANYA_QUIC_PEER_ADDR_MAX];
        let room = buf.len() - 1; // the NUL stays
        let mut w = &mut buf[..room];
        if w.write_fmt(args).is_err() {
            return Err(QuicMessageError::new(
                ErrorKind::BadAddress,
                format!("address {args} is longer than {room} bytes"),
            ));
        }
        let len = room - w.len();
        Ok(CAddr { buf, len })
    }

    pub(crate) fn as_cstr(&self) -> &std::ffi::CStr {
        std::ffi::CStr::from_bytes_with_nul(&self.buf[..=self.len]).expect("one NUL, at the end")
    }

    pub(crate) fn as_ptr(&self) -> *const std::ffi::c_char {
        self.buf.as_ptr().cast()
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Debug for CAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

mod sealed {
    pub trait Sealed {
        fn to_c(&self) -> Result<super::CAddr, crate::QuicMessageError>;
    }
}

/// A peer's address, as every call that names a peer takes it: a
/// [`SocketAddr`] (or `SocketAddrV4`/`V6`, `(IpAddr, u16)`), or a string
/// `"ip:port"`, `"[ipv6]:port"` or `"host:port"` (`&str`, `String`,
/// `(&str, u16)`).
///
/// A host name is resolved by the library (bounded by
/// [`Config::resolve_timeout`](crate::Config::resolve_timeout), answers
/// cached for 30 s) to an address of a family the endpoint's socket can
/// reach; the connection is keyed by that address, so received messages
/// carry the IP address, never the name. The blocking calls resolve in the
/// calling thread; the non-blocking ones (and so every async call) in the
/// background. A name that does not resolve fails with
/// [`ErrorKind::Resolve`] (a blocking send) or a
/// [`SendFailed`](crate::Event::SendFailed) event carrying it.
///
/// Strings are checked here only for a NUL byte and the length limit
/// (`ARANYA_QUIC_PEER_ADDR_MAX`, 264 bytes with the NUL); anything else
/// wrong is the library's [`ErrorKind::BadAddress`].
///
/// Because the address parameters are generic, write
/// `ep.send(addr, ..)` with a typed `addr`, or pass the string itself
/// (`ep.send("127.0.0.1:4433", ..)`) rather than `"…".parse()?`, whose
/// target type could not be inferred.
pub trait PeerAddr: sealed::Sealed {}

macro_rules! peer_addr {
    ($t:ty, $s:ident => $e:expr) => {
        impl sealed::Sealed for $t {
            fn to_c(&self) -> Result<CAddr, QuicMessageError> {
                let $s = self;
                $e
            }
        }
        impl PeerAddr for $t {}
    };
}

peer_addr!(SocketAddr, a => CAddr::from_socket(*a));
peer_addr!(SocketAddrV4, a => CAddr::from_socket((*a).into()));
peer_addr!(SocketAddrV6, a => CAddr::from_socket((*a).into()));
peer_addr!((IpAddr, u16), a => CAddr::from_socket((*a).into()));
peer_addr!((Ipv4Addr, u16), a => CAddr::from_socket((*a).into()));
peer_addr!((Ipv6Addr, u16), a => CAddr::from_socket((*a).into()));
peer_addr!(str, a => CAddr::from_str(a));
peer_addr!(String, a => CAddr::from_str(a));
peer_addr!((&str, u16), a => host_port(a.0, a.1));
peer_addr!((String, u16), a => host_port(&a.0, a.1));

impl<T: PeerAddr + ?Sized> sealed::Sealed for &T {
    fn to_c(&self) -> Result<CAddr, QuicMessageError> {
        (**self).to_c()
    }
}
impl<T: PeerAddr + ?Sized> PeerAddr for &T {}

/// `host:port`, bracketing a bare IPv6 literal.
fn host_port(host: &str, port: u16) -> Result<CAddr, QuicMessageError> {
    if host.as_bytes().contains(&0) {
        return Err(QuicMessageError::new(ErrorKind::BadAddress, format!("host {host:?} contains a NUL byte")));
    }
    if host.contains(':') && !host.starts_with('[') {
        CAddr::write(format_args!("[{host}]:{port}"))
    } else {
        CAddr::write(format_args!("{host}:{port}"))
    }
}

/// The C form of any peer address.
pub(crate) fn c_addr<A: PeerAddr + ?Sized>(addr: &A) -> Result<CAddr, QuicMessageError> {
    sealed::Sealed::to_c(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<A: PeerAddr + ?Sized>(a: &A) -> String {
        let c = c_addr(a).unwrap();
        assert_eq!(c.buf[c.len], 0);
        c.as_cstr().to_str().unwrap().to_owned()
    }

    #[test]
    fn every_form_formats_like_the_c_api() {
        let v4: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert_eq!(text(&v4), "127.0.0.1:80");
        assert_eq!(text(&&v4), "127.0.0.1:80");
        assert_eq!(text(&"[::1]:80".parse::<SocketAddr>().unwrap()), "[::1]:80");
        assert_eq!(text("localhost:4433"), "localhost:4433");
        assert_eq!(text(&String::from("peer.example:1")), "peer.example:1");
        assert_eq!(text(&("peer.example", 7)), "peer.example:7");
        assert_eq!(text(&("::1", 7)), "[::1]:7");
        assert_eq!(text(&(IpAddr::from([10, 0, 0, 1]), 9)), "10.0.0.1:9");
        // The longest text a SocketAddr has fits easily.
        let longest: SocketAddr = SocketAddrV6::new(
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe".parse().unwrap(),
            65535,
            0,
            u32::MAX,
        )
        .into();
        assert_eq!(text(&longest), longest.to_string());
    }

    #[test]
    fn strings_too_long_or_with_a_nul_are_bad_addresses() {
        let name = format!("{}:1", "a".repeat(sys::ARANYA_QUIC_PEER_ADDR_MAX - 3));
        assert_eq!(name.len(), sys::ARANYA_QUIC_PEER_ADDR_MAX - 1);
        assert_eq!(text(name.as_str()), name, "just fits with its NUL");
        let longer = format!("a{name}");
        assert_eq!(c_addr(longer.as_str()).unwrap_err().kind(), ErrorKind::BadAddress);
        assert_eq!(c_addr("a\0b:1").unwrap_err().kind(), ErrorKind::BadAddress);
        assert_eq!(c_addr(&("a\0", 1)).unwrap_err().kind(), ErrorKind::BadAddress);
    }
}
