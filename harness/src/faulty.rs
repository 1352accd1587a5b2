//! A TCP proxy that misbehaves on purpose, deterministically: placed between a client (the
//! agent) and a server (the broker), it forwards each chunk it reads — one `read` of up to
//! 16 KiB, a TCP segment or a few — and, drawing from a seeded generator, delays some, drops
//! whole connections, or stalls them (keeps accepting and reading, never forwards or answers).
//!
//! - **Delay**: a chunk picked (`delay_percent` of them) is held `delay`; order is kept per
//!   direction (a chunk behind a held one waits for it), so a stream is late, never reordered.
//! - **Drop**: a chunk picked (`drop_per_mille` of them) closes its connection both ways, the
//!   chunk unsent — what a NAT timeout or a cell handover does.
//! - **Forget**: [`FaultyProxy::drop_open`] closes every open connection at once.
//! - **Stall**: [`FaultyProxy::stall_open`] freezes every open connection (both directions
//!   read and discarded, nothing written: a broker that accepts and never answers);
//!   [`FaultyProxy::stall_new`] does the same to connections accepted from then on.
//!
//! Each connection's two directions draw from their own stream of one seeded SplitMix64
//! (`Rng::new(seed, 2 × connection + direction)`), so the same seed makes the same decisions
//! for the same sequence of chunks. The counters and the timed [`ProxyEvent`]s say what it did.
//!
//! Owns: the proxy's sockets and its decisions. Does not own the link underneath (see
//! [`crate::netns`], which cuts it) nor what the bytes mean.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::Error;

/// The largest chunk read at once.
const CHUNK: usize = 16 * 1024;

/// What the proxy does to the chunks it forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    /// The generator's seed.
    pub seed: u64,
    /// Chunks held back, percent (0-100).
    pub delay_percent: u64,
    /// How long a held chunk waits.
    pub delay: Duration,
    /// Chunks that close their connection instead, per mille (0-1000).
    pub drop_per_mille: u64,
}

impl Faults {
    /// Forwards everything at once.
    pub fn none(seed: u64) -> Self {
        Self {
            seed,
            delay_percent: 0,
            delay: Duration::ZERO,
            drop_per_mille: 0,
        }
    }
}

/// What the proxy has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyCounters {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections the server refused (closed at once).
    pub upstream_failures: u64,
    /// Chunks forwarded (either way).
    pub chunks: u64,
    /// Of those, chunks held back.
    pub delayed: u64,
    /// Bytes forwarded (either way).
    pub bytes: u64,
    /// Connections closed by a drop.
    pub dropped: u64,
    /// Connections stalled.
    pub stalled: u64,
    /// Chunks read and discarded on stalled connections.
    pub discarded: u64,
}

/// One thing the proxy saw or did, with when ([`FaultyProxy::events`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyEvent {
    /// Connection `n` (counted from 0) was accepted.
    Accepted(u64),
    /// Connection `n` was stalled.
    Stalled(u64),
    /// The client closed connection `n` (or it failed on the client's side).
    ClientClosed(u64),
    /// The server closed connection `n`.
    ServerClosed(u64),
    /// The proxy dropped connection `n`.
    Dropped(u64),
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    upstream_failures: AtomicU64,
    chunks: AtomicU64,
    delayed: AtomicU64,
    bytes: AtomicU64,
    dropped: AtomicU64,
    stalled: AtomicU64,
    discarded: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// An open connection: its number, its stall flag and its order to close.
type Open = (u64, Arc<AtomicBool>, Arc<Notify>);

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    faults: Mutex<Faults>,
    stall_new: AtomicBool,
    counters: Counters,
    events: Mutex<Vec<(Instant, ProxyEvent)>>,
    /// The open connections.
    open: Mutex<Vec<Open>>,
}

impl Shared {
    fn event(&self, event: ProxyEvent) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((Instant::now(), event));
    }
}

/// The proxy, listening until dropped (its task and every connection end with it).
#[derive(Debug)]
pub struct FaultyProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FaultyProxy {
    /// Listens on `listen` (port 0: any) and forwards each connection to `upstream` with
    /// `faults`. Runs on the current tokio runtime.
    ///
    /// # Errors
    /// [`Error::Listen`] if `listen` cannot be bound.
    pub async fn start(
        listen: SocketAddr,
        upstream: SocketAddr,
        faults: Faults,
    ) -> Result<Self, Error> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| Error::Listen {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Listen {
            addr: listen,
            source,
        })?;
        let shared = Arc::new(Shared {
            upstream,
            faults: Mutex::new(faults),
            stall_new: AtomicBool::new(false),
            counters: Counters::default(),
            events: Mutex::new(Vec::new()),
            open: Mutex::new(Vec::new()),
        });
        let task = tokio::spawn(accept(listener, Arc::clone(&shared)));
        Ok(Self { addr, shared, task })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The faults for connections accepted from now on (open ones keep theirs).
    pub fn set_faults(&self, faults: Faults) {
        *self
            .shared
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = faults;
    }

    /// Stalls every open connection: from now on both directions are read and discarded,
    /// nothing is written. Returns how many were stalled.
    pub fn stall_open(&self) -> usize {
        let open = self
            .shared
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut n = 0;
        for (id, flag, _) in open.iter() {
            if !flag.swap(true, Ordering::Relaxed) {
                bump(&self.shared.counters.stalled, 1);
                self.shared.event(ProxyEvent::Stalled(*id));
                n += 1;
            }
        }
        n
    }

    /// Closes every open connection both ways at once, as a carrier's NAT that forgot them
    /// (counted as drops). Returns how many.
    pub fn drop_open(&self) -> usize {
        let open = self
            .shared
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (_, _, close) in open.iter() {
            close.notify_one();
        }
        open.len()
    }

    /// Whether connections accepted from now on are stalled from the start (accepted, read,
    /// never forwarded nor answered).
    pub fn stall_new(&self, stall: bool) {
        self.shared.stall_new.store(stall, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn counters(&self) -> ProxyCounters {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ProxyCounters {
            accepted: get(&c.accepted),
            upstream_failures: get(&c.upstream_failures),
            chunks: get(&c.chunks),
            delayed: get(&c.delayed),
            bytes: get(&c.bytes),
            dropped: get(&c.dropped),
            stalled: get(&c.stalled),
            discarded: get(&c.discarded),
        }
    }

    /// Everything it saw or did so far, in order, with when.
    pub fn events(&self) -> Vec<(Instant, ProxyEvent)> {
        self.shared
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = tokio::task::JoinSet::new();
    let mut next = 0u64;
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of descriptors or the like: try again shortly.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let id = next;
        next += 1;
        bump(&shared.counters.accepted, 1);
        shared.event(ProxyEvent::Accepted(id));
        // Reap finished connections as we go.
        while connections.try_join_next().is_some() {}
        connections.spawn(serve(client, id, Arc::clone(&shared)));
    }
}

/// How one direction ended.
enum End {
    /// Its reader saw the end or an error.
    Read,
    /// Its writer failed.
    Write,
    /// The faults dropped the connection.
    Dropped,
}

async fn serve(client: TcpStream, id: u64, shared: Arc<Shared>) {
    let _ = client.set_nodelay(true);
    let stalled = Arc::new(AtomicBool::new(false));
    if shared.stall_new.load(Ordering::Relaxed) {
        stalled.store(true, Ordering::Relaxed);
        bump(&shared.counters.stalled, 1);
        shared.event(ProxyEvent::Stalled(id));
        let (mut reader, _writer) = client.into_split();
        let mut buf = vec![0u8; CHUNK];
        while matches!(reader.read(&mut buf).await, Ok(n) if n > 0) {
            bump(&shared.counters.discarded, 1);
        }
        shared.event(ProxyEvent::ClientClosed(id));
        return;
    }
    let Ok(server) = TcpStream::connect(shared.upstream).await else {
        bump(&shared.counters.upstream_failures, 1);
        shared.event(ProxyEvent::ServerClosed(id));
        return;
    };
    let _ = server.set_nodelay(true);
    let close = Arc::new(Notify::new());
    shared
        .open
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((id, Arc::clone(&stalled), Arc::clone(&close)));
    let faults = *shared.faults.lock().unwrap_or_else(PoisonError::into_inner);
    let (client_r, client_w) = client.into_split();
    let (server_r, server_w) = server.into_split();
    let up = pump(
        client_r,
        server_w,
        Rng::new(faults.seed, 2 * id),
        faults,
        &stalled,
        &shared,
    );
    let down = pump(
        server_r,
        client_w,
        Rng::new(faults.seed, 2 * id + 1),
        faults,
        &stalled,
        &shared,
    );
    let event = tokio::select! {
        () = close.notified() => ProxyEvent::Dropped(id),
        end = up => match end {
            End::Read => ProxyEvent::ClientClosed(id),
            End::Write => ProxyEvent::ServerClosed(id),
            End::Dropped => ProxyEvent::Dropped(id),
        },
        end = down => match end {
            End::Read => ProxyEvent::ServerClosed(id),
            End::Write => ProxyEvent::ClientClosed(id),
            End::Dropped => ProxyEvent::Dropped(id),
        },
    };
    if event == ProxyEvent::Dropped(id) {
        bump(&shared.counters.dropped, 1);
    }
    shared.event(event);
    shared
        .open
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|(open, _, _)| *open != id);
    // Both sockets close as their halves drop here.
}

/// One direction: reads chunks, decides each one's fate, writes them in order at their time.
async fn pump(
    mut reader: tokio::net::tcp::OwnedReadHalf,
    mut writer: tokio::net::tcp::OwnedWriteHalf,
    mut rng: Rng,
    faults: Faults,
    stalled: &AtomicBool,
    shared: &Shared,
) -> End {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let read = async {
        let mut last = Instant::now();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return End::Read,
                Ok(n) => n,
            };
            if stalled.load(Ordering::Relaxed) {
                bump(&shared.counters.discarded, 1);
                continue;
            }
            if rng.per_mille(faults.drop_per_mille) {
                return End::Dropped;
            }
            let mut at = Instant::now();
            if rng.percent(faults.delay_percent) {
                at += faults.delay;
                bump(&shared.counters.delayed, 1);
            }
            // Never before the chunk ahead of it: late, not reordered.
            at = at.max(last);
            last = at;
            if tx.send((at, buf[..n].to_vec())).is_err() {
                return End::Write;
            }
        }
    };
    let write = async {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if stalled.load(Ordering::Relaxed) {
                bump(&shared.counters.discarded, 1);
                continue;
            }
            if writer.write_all(&chunk).await.is_err() {
                return End::Write;
            }
            bump(&shared.counters.chunks, 1);
            bump(&shared.counters.bytes, chunk.len() as u64);
        }
        End::Write
    };
    tokio::select! {
        end = read => end,
        end = write => end,
    }
}

/// SplitMix64, as the testbed's scenarios use (tests/src/scenario/rng.rs): fixed forever, so
/// a seed means the same decisions in every build.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Self {
        let mut r = Self(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        let _ = r.next_u64();
        r
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `n` / 100 (no draw for 0).
    fn percent(&mut self, n: u64) -> bool {
        n > 0 && self.next_u64() % 100 < n
    }

    /// True with probability `n` / 1000 (no draw for 0).
    fn per_mille(&mut self, n: u64) -> bool {
        n > 0 && self.next_u64() % 1000 < n
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::net::Ipv4Addr;

    /// An echo server on loopback.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    fn loopback0() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
    }

    #[test]
    fn the_generator_is_splitmix64() {
        // SplitMix64's published first output for state 0 after one increment.
        assert_eq!(Rng(0).next_u64(), 0xE220_A839_7B1D_CDAF);
        let mut a = Rng::new(7, 1);
        let mut b = Rng::new(7, 1);
        assert!((0..100).all(|_| a.percent(30) == b.percent(30)));
        let mut r = Rng::new(1, 0);
        let held = (0..10_000).filter(|_| r.percent(30)).count();
        assert!((2_700..3_300).contains(&held), "{held}");
        assert!(!Rng::new(1, 0).percent(0) && !Rng::new(1, 0).per_mille(0));
    }

    #[tokio::test]
    async fn delayed_chunks_arrive_late_in_order_and_are_counted() {
        let upstream = echo().await;
        let faults = Faults {
            seed: 3,
            delay_percent: 50,
            delay: Duration::from_millis(200),
            drop_per_mille: 0,
        };
        let proxy = FaultyProxy::start(loopback0(), upstream, faults)
            .await
            .unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        s.set_nodelay(true).unwrap();
        let mut got = Vec::new();
        for i in 0..20u8 {
            s.write_all(&[i]).await.unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await.unwrap();
            got.push(b[0]);
        }
        assert_eq!(got, (0..20).collect::<Vec<u8>>(), "in order, nothing lost");
        let c = proxy.counters();
        assert_eq!((c.accepted, c.chunks, c.bytes), (1, 40, 40));
        assert!(c.delayed > 5 && c.delayed < 35, "{c:?}");
    }

    #[tokio::test]
    async fn a_stalled_connection_answers_nothing_and_its_close_is_seen() {
        let upstream = echo().await;
        let proxy = FaultyProxy::start(loopback0(), upstream, Faults::none(1))
            .await
            .unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        s.write_all(b"a").await.unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        assert_eq!(proxy.stall_open(), 1);
        s.write_all(b"b").await.unwrap();
        let answer = tokio::time::timeout(Duration::from_millis(300), s.read(&mut b)).await;
        assert!(answer.is_err(), "a stalled connection answers nothing");
        drop(s);
        crate::wait::wait_until(Duration::from_secs(5), "the client's close", || {
            proxy
                .events()
                .iter()
                .any(|(_, e)| *e == ProxyEvent::ClientClosed(0))
        })
        .await;
        let c = proxy.counters();
        assert_eq!((c.stalled, c.discarded), (1, 1));
    }

    #[tokio::test]
    async fn drops_close_connections() {
        let upstream = echo().await;
        let faults = Faults {
            drop_per_mille: 1000,
            ..Faults::none(5)
        };
        let proxy = FaultyProxy::start(loopback0(), upstream, faults)
            .await
            .unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        s.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b))
            .await
            .unwrap();
        assert!(matches!(n, Ok(0) | Err(_)), "closed, nothing echoed");
        assert_eq!(proxy.counters().dropped, 1);

        proxy.set_faults(Faults::none(5));
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        s.write_all(b"y").await.unwrap();
        s.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"y");
        assert_eq!(proxy.drop_open(), 1);
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b))
            .await
            .unwrap();
        assert!(matches!(n, Ok(0) | Err(_)), "forgotten: closed");
        assert_eq!(proxy.counters().dropped, 2);
    }
}
