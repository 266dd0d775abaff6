//! Telling HTTP/2 with prior knowledge (h2c) from HTTP/1.1 by the first
//! bytes of a connection, and giving those bytes back to the protocol.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

/// What an HTTP/2 client sends first (RFC 9113, section 3.4). No HTTP/1.1
/// request line starts with it: `PRI` with the version `HTTP/2.0`.
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protocol {
    Http1,
    Http2,
}

/// A `TcpStream` with the bytes read to detect its protocol put back in
/// front: 24 bytes inline, no allocation.
#[derive(Debug)]
pub(super) struct Rewind {
    prefix: [u8; 24],
    start: u8,
    end: u8,
    io: TcpStream,
}

impl Rewind {
    /// The stream as is, nothing read from it.
    pub(super) fn plain(io: TcpStream) -> Self {
        Self {
            prefix: [0; 24],
            start: 0,
            end: 0,
            io,
        }
    }

    /// Reads until the first bytes either differ from the HTTP/2 preface
    /// (HTTP/1.1) or are the whole of it (HTTP/2). A connection closed
    /// before it sent a byte is an `UnexpectedEof` error; closed within a
    /// partial preface, it is left to the HTTP/1 side to answer.
    pub(super) async fn detect(io: TcpStream) -> io::Result<(Self, Protocol)> {
        let mut this = Self::plain(io);
        loop {
            let end = usize::from(this.end);
            this.io.readable().await?;
            let read = match this.io.try_read(&mut this.prefix[end..]) {
                Ok(read) => read,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => return Err(err),
            };
            if read == 0 {
                if end == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                return Ok((this, Protocol::Http1));
            }
            let end = end + read;
            // At most 24 bytes: the buffer's length.
            this.end = end as u8;
            if this.prefix[..end] != PREFACE[..end] {
                return Ok((this, Protocol::Http1));
            }
            if end == PREFACE.len() {
                return Ok((this, Protocol::Http2));
            }
        }
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.start < this.end {
            let pending = &this.prefix[usize::from(this.start)..usize::from(this.end)];
            let n = pending.len().min(buf.remaining());
            buf.put_slice(&pending[..n]);
            this.start += n as u8;
            // With what has arrived since, if anything: the request head
            // then comes in one read, as it would without detection (hyper
            // grows its read buffer to read on after a partial head, which
            // costs every HTTP/1 connection a larger buffer).
            // An error shows again at the next read.
            if buf.remaining() > 0 {
                let _ = Pin::new(&mut this.io).poll_read(cx, buf);
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    #[inline]
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    #[inline]
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    #[inline]
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    #[inline]
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    #[inline]
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::{TcpListener, TcpStream},
    };

    use super::*;

    /// Detects what `chunks` (written one by one, flushed) start with, and
    /// returns it with every byte the connection reads afterwards.
    async fn detect(chunks: &[&[u8]]) -> io::Result<(Protocol, Vec<u8>)> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let chunks: Vec<Vec<u8>> = chunks.iter().map(|c| c.to_vec()).collect();
        let writer = tokio::spawn(async move {
            for chunk in chunks {
                client.write_all(&chunk).await.unwrap();
                client.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
            client.shutdown().await.unwrap();
        });
        let (mut io, protocol) = Rewind::detect(server).await?;
        let mut all = Vec::new();
        io.read_to_end(&mut all).await.unwrap();
        writer.await.unwrap();
        Ok((protocol, all))
    }

    #[tokio::test]
    async fn http1_requests_are_given_back_whole() {
        let request = b"GET /events HTTP/1.1\r\nhost: x\r\n\r\n";
        assert_eq!(
            detect(&[request]).await.unwrap(),
            (Protocol::Http1, request.to_vec())
        );
        // Byte by byte, and a method that starts like the preface.
        let request = b"PRIX / HTTP/1.1\r\n\r\n";
        let chunks: Vec<&[u8]> = request.chunks(1).collect();
        assert_eq!(
            detect(&chunks).await.unwrap(),
            (Protocol::Http1, request.to_vec())
        );
    }

    #[tokio::test]
    async fn the_http2_preface_is_detected_in_pieces() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend_from_slice(b"\0\0\0\x04\0\0\0\0\0");
        let (first, rest) = bytes.split_at(5);
        let (middle, last) = rest.split_at(19);
        assert_eq!(
            detect(&[first, middle, last]).await.unwrap(),
            (Protocol::Http2, bytes.clone())
        );
    }

    #[tokio::test]
    async fn a_partial_preface_then_close_is_http1_and_silence_an_error() {
        assert_eq!(
            detect(&[b"PRI * HT"]).await.unwrap(),
            (Protocol::Http1, b"PRI * HT".to_vec())
        );
        let err = detect(&[]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
