//! The shape of a tokio daemon using aranya-quic: one shared endpoint, a
//! receive loop task on the endpoint's fd, and sends on blocking threads.
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

use aranya_quic::{ChannelKind, Config, Endpoint, GraphId, QuicMessageError};

/// Loads `name`'s identity and the CA, and binds 127.0.0.1 on any port.
fn config(certs: &Path, name: &str) -> std::io::Result<Config> {
    Ok(Config::new(
        "127.0.0.1:0".parse().unwrap(),
        std::fs::read(certs.join(format!("{name}.crt")))?,
        std::fs::read(certs.join(format!("{name}.key")))?,
        std::fs::read(certs.join("ca.pem"))?,
    ))
}

/// `send` blocks (dial, handshake, backpressure): keep it off the runtime.
async fn send(ep: &Arc<Endpoint>, to: std::net::SocketAddr, team: GraphId, label: &str, msg: Vec<u8>) -> Result<(), QuicMessageError> {
    let (ep, label) = (ep.clone(), label.to_owned());
    tokio::task::spawn_blocking(move || ep.send(to, &team, &label, &msg)).await.expect("send task")
}

/// Bob: receive forever, echo channel messages to whoever sent them.
async fn echo_loop(ep: Arc<Endpoint>) -> Result<(), QuicMessageError> {
    let mut buf = Vec::new(); // grows to the largest message
    loop {
        let ch = ep.recv(&mut buf).await?;
        match ch.kind {
            ChannelKind::Channel => {
                println!("bob   <- {} [{}] {:?}", ch.addr, ch.label, String::from_utf8_lossy(&buf));
                // Reply on the same channel: the sender's address is its
                // listening address.
                send(&ep, ch.addr, ch.team_id, &ch.label, buf.clone()).await?;
            }
            ChannelKind::Sync => println!("bob   <- {} sync type {} ({} bytes)", ch.addr, ch.sync_type, buf.len()),
            _ => {}
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let certs = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../build/certs");
        p.canonicalize().unwrap_or(p)
    });
    println!("aranya-quic {}; certificates from {}", aranya_quic::version(), certs.display());

    let alice = Arc::new(Endpoint::new(config(&certs, "alice")?)?);
    let bob = Arc::new(Endpoint::new(config(&certs, "bob")?)?);
    let bob_addr = bob.local_addr()?;
    println!("alice on {}, bob on {}", alice.local_addr()?, bob_addr);

    let bob_task = tokio::spawn(echo_loop(bob.clone()));

    let team = GraphId([0xAA; 32]);
    for (label, text) in [("chat", "hello"), ("chat", "how are you"), ("status", "online")] {
        send(&alice, bob_addr, team, label, text.as_bytes().to_vec()).await?;
    }
    {
        let a = alice.clone();
        tokio::task::spawn_blocking(move || a.send_sync(bob_addr, 1, b"sync request")).await??;
    }

    // Alice's receive loop: wait for the three echoes, with a deadline.
    let mut buf = Vec::new();
    for _ in 0..3 {
        let ch = tokio::time::timeout(Duration::from_secs(10), alice.recv(&mut buf)).await??;
        println!("alice <- {} [{}] {:?}", ch.addr, ch.label, String::from_utf8_lossy(&buf));
    }

    let s = alice.stats()?;
    println!("alice sent {} messages ({} bytes), received {}", s.messages_sent, s.bytes_sent, s.messages_received);

    // Shut down: stop bob's loop (shutdown wakes its recv with an error),
    // then drop the endpoints (graceful close, bounded by the drain timeout).
    bob.shutdown()?;
    let _ = bob_task.await?;
    Ok(())
}
