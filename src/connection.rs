//! Limits on one client connection (DESIGN §9: nobody on the network may
//! exhaust connections): a watchdog that closes connections which move no
//! bytes, and the cap on connections served at once.
//!
//! hyper's own header-read timer covers a request head that starts and
//! stalls (and, since hyper starts it whenever an HTTP/1 connection waits
//! for a request, keep-alive idling). It cannot see a connection that never
//! sends a byte: hyper-util's protocol sniffing waits for the first bytes
//! with no timer, and so does an HTTP/2 or TLS connection gone quiet. The
//! [`Watched`] wrapper counts reads and writes that move bytes; [`watchdog`]
//! ends the connection after `first_byte` with nothing received, or `idle`
//! with nothing moving. It costs a relaxed atomic increment per I/O call
//! and one timer per connection, not per request.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Whether a connection moved bytes: a counter the I/O path bumps (no clock
/// read per operation) and the watchdog samples.
pub struct Activity {
    events: AtomicU64,
    received: AtomicBool,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            events: AtomicU64::new(0),
            received: AtomicBool::new(false),
        })
    }

    fn touch(&self, received: bool) {
        self.events.fetch_add(1, Ordering::Relaxed);
        if received && !self.received.load(Ordering::Relaxed) {
            self.received.store(true, Ordering::Relaxed);
        }
    }
}

/// An I/O stream that records activity on every read or write that moves bytes.
pub struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> Watched<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch(true);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch(false);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch(false);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Completes when the connection should be closed: no byte received within
/// `first_byte` of accepting it, or no byte moved for `idle`. It samples the
/// activity counter a few times per limit, so a connection is closed between
/// one limit and 1.25 limits after it went quiet.
pub async fn watchdog(activity: Arc<Activity>, first_byte: Duration, idle: Duration) {
    let started = Instant::now();
    // Until the first byte: one check at the deadline.
    while !activity.received.load(Ordering::Relaxed) {
        let left = first_byte.saturating_sub(started.elapsed());
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(first_byte / 4 + Duration::from_millis(1))).await;
    }
    let tick = idle / 4;
    let mut seen = activity.events.load(Ordering::Relaxed);
    let mut quiet = Duration::ZERO;
    loop {
        tokio::time::sleep(tick).await;
        let now = activity.events.load(Ordering::Relaxed);
        if now == seen {
            quiet += tick;
            if quiet >= idle {
                return;
            }
        } else {
            seen = now;
            quiet = Duration::ZERO;
        }
    }
}
