//! The shape of a tokio daemon using aranya-quic: one shared
//! `AsyncEndpoint`, a receive loop over its message stream, an event loop
//! over its event stream, sends that never block a thread, and a shutdown
//! that waits for the peers' confirmations before the endpoint is dropped.
//!
//! Runs two such "daemons" (alice and bob) in one process: alice sends on
//! two channels and a sync type, bob's loop echoes every channel message
//! back to its sender, alice's loop prints what comes back.
//!
//!     make lib
//!     go run ./examples/certgen -out build/certs alice bob
//!     cd bindings/rust && cargo run --features tokio --example daemon -- ../../build/certs
//!
//! (The certificates folder defaults to <repo>/build/certs.)

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aranya_quic::{AsyncEndpoint, ChannelKind, Config, Event, GraphId, QuicMessageError};

/// Loads `name`'s identity and the CA, and binds 127.0.0.1 on any port.
fn config(certs: &Path, name: &str) -> std::io::Result<Config> {
    Ok(Config::new(
        "127.0.0.1:0".parse().unwrap(),
        std::fs::read(certs.join(format!("{name}.crt")))?,
        std::fs::read(certs.join(format!("{name}.key")))?,
        std::fs::read(certs.join("ca.pem"))?,
    ))
}

/// Bob: receive until the endpoint shuts down, echo channel messages to
/// whoever sent them.
async fn echo_loop(ep: Arc<AsyncEndpoint>) -> Result<(), QuicMessageError> {
    let mut messages = ep.messages();
    while let Some(m) = messages.next().await {
        let m = m?;
        let ch = &m.channel;
        match ch.kind {
            ChannelKind::Channel => {
                println!("bob   <- {} [{}] {:?}", ch.addr, ch.label, String::from_utf8_lossy(&m.data));
                // Reply on the same channel: the sender's address is its
                // listening address. Accepted at once, or after waiting
                // (without blocking) for room in the peer's queue.
                ep.send(ch.addr, &ch.team_id, &ch.label, &m.data).await?;
            }
            ChannelKind::Sync => println!("bob   <- {} sync type {} ({} bytes)", ch.addr, ch.sync_type, m.data.len()),
            _ => {}
        }
    }
    Ok(()) // the stream ends once the endpoint shut down
}

/// What happened that no call reports: connections, failed sends, closes.
async fn event_loop(name: &'static str, ep: Arc<AsyncEndpoint>) -> Result<(), QuicMessageError> {
    let mut events = ep.events();
    while let Some(ev) = events.next().await {
        match ev? {
            Event::PeerConnected { addr, .. } => println!("{name} event: connected to {addr}"),
            Event::PeerDisconnected { addr, error, .. } => {
                println!("{name} event: disconnected from {addr} ({})", error.map_or("graceful".into(), |e| e.to_string()))
            }
            Event::SendFailed { id, addr, error, .. } => println!("{name} event: message {id} to {addr} not sent: {error}"),
            other => println!("{name} event: {other:?}"),
        }
    }
    Ok(()) // ends after the ShutdownFinished event
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let certs = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../build/certs");
        p.canonicalize().unwrap_or(p)
    });
    println!("aranya-quic {}; certificates from {}", aranya_quic::version(), certs.display());

    let alice = Arc::new(AsyncEndpoint::new(config(&certs, "alice")?)?);
    let bob = Arc::new(AsyncEndpoint::new(config(&certs, "bob")?)?);
    let bob_addr = bob.local_addr()?;
    println!("alice on {}, bob on {}", alice.local_addr()?, bob_addr);

    let bob_task = tokio::spawn(echo_loop(bob.clone()));
    let alice_events = tokio::spawn(event_loop("alice", alice.clone()));

    let team = GraphId([0xAA; 32]);
    for (label, text) in [("chat", "hello"), ("chat", "how are you"), ("status", "online")] {
        let id = alice.send(bob_addr, &team, label, text.as_bytes()).await?;
        println!("alice -> [{label}] {text:?} (message {id})");
    }
    // By host name: resolved by the library, in the background.
    alice.send_sync(format!("localhost:{}", bob_addr.port()), 1, b"sync request").await?;

    // Alice's receive side: the three echoes, with a deadline.
    let mut messages = alice.messages();
    for _ in 0..3 {
        let m = tokio::time::timeout(Duration::from_secs(10), messages.next()).await?.ok_or("alice stopped")??;
        println!("alice <- {} [{}] {:?}", m.channel.addr, m.channel.label, String::from_utf8_lossy(&m.data));
    }
    drop(messages);

    let s = alice.stats()?;
    println!("alice sent {} messages ({} bytes), received {}", s.messages_sent, s.bytes_sent, s.messages_received);

    // Close the connection and wait for bob's confirmations, without
    // blocking the runtime; then shut both down the same way. Dropping
    // the endpoints afterwards returns at once.
    alice.close(bob_addr).await?;
    alice.shutdown().await?;
    bob.shutdown().await?;
    bob_task.await??;
    alice_events.await??;
    Ok(())
}
