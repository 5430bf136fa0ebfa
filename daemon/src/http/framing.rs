//! Request framing, checked before hyper sees a byte: every request head on a connection is
//! parsed here first (`httparse`, the parser hyper itself uses, with hyper's own rules on top),
//! and one hyper would refuse is refused here instead, with the API's JSON error.
//!
//! Why: hyper answers a head it cannot parse (a malformed request line, a raw `\xff` in the
//! target, bad framing headers, a head over the size limit) by itself, with an empty body and no
//! hook to change it. The API promises `{"error": {"code", "message"}}` on every 4xx, so no
//! such head may reach hyper. [`Checked`] sits between the socket and hyper: it hands hyper
//! only heads it has accepted, and follows each body (`Content-Length` or chunked) to find where
//! the next head starts. On a refusal it gives hyper end-of-file, so hyper finishes the answers
//! it owes to earlier (pipelined) requests and shuts the connection down; the refusal is
//! written at that shutdown, after them, and the connection closes.
//!
//! Framing is also stricter than hyper's: `Transfer-Encoding` must be exactly `chunked` (hyper
//! reads `gzip, chunked` as chunked, ignoring the gzip), and `Content-Length` must be one
//! header of digits, never beside `Transfer-Encoding` (the classic request-smuggling shapes).

use super::ApiError;
use hyper::StatusCode;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// hyper's default limit on the number of headers (more is its 431).
const MAX_HEADERS: usize = 100;
/// Smallest read from the socket.
const READ_CHUNK: usize = 8192;
/// Largest Content-Length followed (hyper's limit is just under u64::MAX; bodies are capped
/// far lower by `max_body_bytes`, with a 413 from the handler).
const MAX_CONTENT_LENGTH: u64 = 1 << 62;
/// Longest chunk-size line (with extensions) followed; beyond it the body is hyper's to refuse.
const MAX_CHUNK_LINE: usize = 4096;

/// Where the next bytes of the connection belong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// A request head (or the blank lines before one).
    Head,
    /// This many more bytes of a `Content-Length` body.
    Length(u64),
    /// A chunk-size line.
    ChunkSize,
    /// This many more bytes of chunk data.
    ChunkData(u64),
    /// The CRLF after chunk data.
    ChunkEnd,
    /// The trailer section after the last chunk, up to its blank line.
    Trailers,
    /// A body hyper will refuse (bad chunk syntax): the rest of the connection is passed
    /// through unchecked, as hyper ends the connection at that body error without an answer
    /// of its own.
    Opaque,
    /// A head was refused: hyper gets end-of-file.
    Refused,
}

/// A TCP connection whose request heads are checked before hyper reads them.
pub(super) struct Checked {
    io: TcpStream,
    /// Bytes read from the socket that hyper has not taken yet; `buf[..ready]` are checked.
    buf: Vec<u8>,
    ready: usize,
    framing: Framing,
    /// The longest head accepted (431 beyond).
    max_head: usize,
    /// The socket said end-of-file.
    eof: bool,
    /// The refusal to write before the connection closes, and how much of it is written.
    refusal: Option<(Vec<u8>, usize)>,
}

impl Checked {
    pub(super) fn new(io: TcpStream, max_head: usize) -> Self {
        Checked {
            io,
            buf: Vec::new(),
            ready: 0,
            framing: Framing::Head,
            max_head,
            eof: false,
            refusal: None,
        }
    }

    fn refuse(&mut self, err: ApiError) {
        self.refusal = Some((err.to_http1_bytes(), 0));
        self.framing = Framing::Refused;
    }

    /// Checks what it can of the unchecked bytes; false when it needs more.
    fn advance(&mut self) -> bool {
        let avail = &self.buf[self.ready..];
        if avail.is_empty() {
            return false;
        }
        let (used, next) = match self.framing {
            Framing::Refused => return false,
            Framing::Opaque => (avail.len(), Framing::Opaque),
            Framing::Head => match check_head(avail, self.max_head) {
                Head::Partial => return false,
                Head::Refused(err) => {
                    self.refuse(err);
                    return true;
                }
                Head::Complete { len, framing } => (len, framing),
            },
            Framing::Length(left) | Framing::ChunkData(left) => {
                let n = left.min(avail.len() as u64);
                let next = match (self.framing, left - n) {
                    (Framing::Length(_), 0) => Framing::Head,
                    (Framing::Length(_), rest) => Framing::Length(rest),
                    (_, 0) => Framing::ChunkEnd,
                    (_, rest) => Framing::ChunkData(rest),
                };
                (n as usize, next)
            }
            Framing::ChunkSize => match httparse::parse_chunk_size(avail) {
                Ok(httparse::Status::Complete((n, 0))) => (n, Framing::Trailers),
                Ok(httparse::Status::Complete((n, size))) => (n, Framing::ChunkData(size)),
                Ok(httparse::Status::Partial) if avail.len() < MAX_CHUNK_LINE => return false,
                _ => (0, Framing::Opaque),
            },
            Framing::ChunkEnd => match avail {
                [b'\r', b'\n', ..] => (2, Framing::ChunkSize),
                [b'\r'] => return false,
                _ => (0, Framing::Opaque),
            },
            Framing::Trailers => {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                match httparse::parse_headers(avail, &mut headers) {
                    Ok(httparse::Status::Complete((n, _))) => (n, Framing::Head),
                    Ok(httparse::Status::Partial) if avail.len() < self.max_head => return false,
                    _ => (0, Framing::Opaque),
                }
            }
        };
        self.ready += used;
        self.framing = next;
        true
    }
}

impl AsyncRead for Checked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.ready > 0 {
                let n = this.ready.min(out.remaining());
                out.put_slice(&this.buf[..n]);
                this.buf.drain(..n);
                this.ready -= n;
                return Poll::Ready(Ok(()));
            }
            if this.framing == Framing::Refused {
                return Poll::Ready(Ok(()));
            }
            if this.advance() {
                continue;
            }
            if this.eof {
                // The client stopped in the middle of a head: say so rather than close silently.
                if this.framing == Framing::Head
                    && this.buf.iter().any(|b| !b.is_ascii_whitespace())
                {
                    this.refuse(ApiError::bad_request(
                        "incomplete_request",
                        "the connection ended inside a request head; send the whole head, \
                         ending with an empty line",
                    ));
                }
                return Poll::Ready(Ok(()));
            }
            // Read as much as hyper asked for, as it would itself: hyper drains an unread body
            // after an early answer (a 413) with the reads it gets at once, and keeps the
            // connection alive only if that finishes the body.
            let start = this.buf.len();
            this.buf.resize(start + out.remaining().max(READ_CHUNK), 0);
            let mut read = ReadBuf::new(&mut this.buf[start..]);
            let polled = Pin::new(&mut this.io).poll_read(cx, &mut read);
            let n = read.filled().len();
            this.buf.truncate(start + n);
            ready!(polled)?;
            if n == 0 {
                this.eof = true;
            }
        }
    }
}

impl AsyncWrite for Checked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    /// hyper shuts down after its last answer: the refusal, if any, goes out first.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some((bytes, written)) = &mut this.refusal {
            while *written < bytes.len() {
                let n = ready!(Pin::new(&mut this.io).poll_write(cx, &bytes[*written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *written += n;
            }
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

impl Drop for Checked {
    /// If hyper ended the connection without shutting it down (an error of its own), the
    /// refusal still goes out if the socket takes it at once; it is a few hundred bytes.
    fn drop(&mut self) {
        if let Some((bytes, written)) = &mut self.refusal {
            while *written < bytes.len() {
                match self.io.try_write(&bytes[*written..]) {
                    Ok(n) if n > 0 => *written += n,
                    _ => break,
                }
            }
        }
    }
}

/// What [`check_head`] found.
enum Head {
    /// Not a whole head yet.
    Partial,
    /// A head to refuse.
    Refused(ApiError),
    /// A head of `len` bytes, followed by a body framed as `framing`.
    Complete { len: usize, framing: Framing },
}

fn bad_target() -> Head {
    Head::Refused(ApiError::bad_request(
        "invalid_target",
        "the request target is not a valid URI; percent-encode bytes that are not printable \
         ASCII",
    ))
}

/// Parses one request head as hyper would and applies the framing rules.
fn check_head(bytes: &[u8], max_head: usize) -> Head {
    let too_large = || {
        Head::Refused(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request line and headers are over {max_head} bytes or {MAX_HEADERS} \
                 headers; send fewer or shorter headers"
            ),
        ))
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(bytes) {
        Ok(httparse::Status::Partial) if bytes.len() >= max_head => return too_large(),
        Ok(httparse::Status::Partial) => return Head::Partial,
        Ok(httparse::Status::Complete(len)) if len > max_head => return too_large(),
        Ok(httparse::Status::Complete(len)) => len,
        Err(httparse::Error::TooManyHeaders) => return too_large(),
        Err(httparse::Error::Token) if req.method.is_some() => return bad_target(),
        Err(e) => {
            return Head::Refused(ApiError::bad_request(
                "malformed_request",
                format!(
                    "the request is not valid HTTP/1.1 ({e}); send `METHOD /path HTTP/1.1`, \
                     then `Name: value` header lines, then an empty line"
                ),
            ))
        }
    };
    let target = req.path.unwrap_or("");
    if hyper::Uri::try_from(target).is_err() {
        return bad_target();
    }
    let values = |name: &'static str| -> Vec<&[u8]> {
        req.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
            .collect()
    };
    let te = values("transfer-encoding");
    let cl = values("content-length");
    let framing = if !te.is_empty() {
        if req.version == Some(0) {
            return Head::Refused(ApiError::bad_request(
                "invalid_framing",
                "HTTP/1.0 has no Transfer-Encoding; send Content-Length, or use HTTP/1.1",
            ));
        }
        let chunked =
            matches!(te.as_slice(), [v] if v.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        if !chunked {
            // RFC 9112 suggests 501, but a 5xx says the server failed (and the fuzz checker
            // holds every 5xx to be a finding): it is the request that is unusable here.
            return Head::Refused(ApiError::new(
                StatusCode::BAD_REQUEST,
                "transfer_encoding_not_supported",
                "the only Transfer-Encoding understood is `chunked` alone (no gzip or other \
                 codings); send `Transfer-Encoding: chunked` or a Content-Length",
            ));
        }
        if !cl.is_empty() {
            return Head::Refused(ApiError::bad_request(
                "invalid_framing",
                "the request has both Transfer-Encoding and Content-Length; send one",
            ));
        }
        Framing::ChunkSize
    } else {
        match cl.as_slice() {
            [] => Framing::Head,
            [v] => {
                let digits = v.trim_ascii();
                match std::str::from_utf8(digits)
                    .ok()
                    .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|d| d.parse::<u64>().ok())
                {
                    Some(0) => Framing::Head,
                    // hyper refuses lengths near u64::MAX with its own (bodiless) error.
                    Some(n) if n > MAX_CONTENT_LENGTH => {
                        return Head::Refused(ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "body_too_large",
                            "the Content-Length is far over any body this daemon accepts \
                             (max_body_bytes)",
                        ))
                    }
                    Some(n) => Framing::Length(n),
                    None => {
                        return Head::Refused(ApiError::bad_request(
                            "invalid_framing",
                            "Content-Length must be a number of bytes",
                        ))
                    }
                }
            }
            _ => {
                return Head::Refused(ApiError::bad_request(
                    "invalid_framing",
                    "the request has more than one Content-Length header; send one",
                ))
            }
        }
    };
    Head::Complete { len, framing }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(head: &[u8]) -> Result<(usize, Framing), (StatusCode, &'static str)> {
        match check_head(head, 16 * 1024) {
            Head::Partial => panic!("partial: {:?}", String::from_utf8_lossy(head)),
            Head::Refused(e) => Err((e.status, e.code)),
            Head::Complete { len, framing } => Ok((len, framing)),
        }
    }

    #[test]
    fn heads_hyper_would_refuse_are_refused_with_a_code() {
        let bad: &[(&[u8], u16, &str)] = &[
            (b"GET /a?\xff HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid_target"),
            (b"GET / HTTP/2.0\r\n\r\n", 400, "malformed_request"),
            (b"G\x01T / HTTP/1.1\r\n\r\n", 400, "malformed_request"),
            (b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400, "malformed_request"),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400, "transfer_encoding_not_supported"),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "transfer_encoding_not_supported"),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "transfer_encoding_not_supported"),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400, "invalid_framing"),
            (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "invalid_framing"),
            (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 400, "invalid_framing"),
            (b"POST / HTTP/1.1\r\nContent-Length: -3\r\n\r\n", 400, "invalid_framing"),
            (b"POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n", 400, "invalid_framing"),
            (b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400, "invalid_framing"),
            (b"POST / HTTP/1.1\r\nContent-Length: 018446744073709551614\r\n\r\n", 413, "body_too_large"),
        ];
        for (head, status, code) in bad {
            assert_eq!(
                framing(head),
                Err((StatusCode::from_u16(*status).unwrap(), *code)),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
        assert_eq!(
            framing(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"),
            Ok((38, Framing::Length(5)))
        );
        assert_eq!(
            framing(b"POST / HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n"),
            Ok((47, Framing::ChunkSize))
        );
        assert_eq!(
            framing(b"\r\nGET / HTTP/1.1\r\n\r\n"),
            Ok((20, Framing::Head))
        );
        assert!(matches!(
            check_head(&[b'a'; 20_000], 16 * 1024),
            Head::Refused(ApiError {
                code: "headers_too_large",
                ..
            })
        ));
    }
}
