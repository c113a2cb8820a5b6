//! quinnbench: the quinn (rustls) baseline of `make bench`, with the same
//! framing (4-byte big-endian length + payload, each message its own
//! write), certificates (examples/certgen), cipher suite (TLS 1.3
//! AES-128-GCM) and flow-control windows as the Go baselines and the
//! library.
//!
//!   quinnbench msg|pingpong|aq-msg|aq-msg-async|aq-msg-async-batch|aq-pingpong
//!              [size=N] [dur=SECONDS] [certs=DIR]
//!
//! aq-*: the same scenarios through this repository's Rust binding of the
//! library (feature `aq`, on by default). aq-msg-async is aq-msg with the
//! receiver on tokio (the binding's async `recv`); aq-msg-async-batch
//! receives with its `recv_batch`.
//! Prints one JSON line: {"scenario":..,"impl":"quinn"|"aranya-quic-rust","metrics":{..}}.

#[cfg(feature = "aq")]
mod aq;

use std::io::BufReader;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{ClientConfig, Endpoint, ServerConfig, TransportConfig, VarInt};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, BufReader as AsyncBufReader};

pub(crate) type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const ALPN: &[u8] = b"aqbench/1";

pub(crate) struct Opts {
    pub(crate) scenario: String,
    pub(crate) size: usize,
    pub(crate) dur: f64,
    pub(crate) certs: String,
}

fn parse() -> Res<Opts> {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().ok_or("usage: quinnbench msg|pingpong [key=value ...]")?;
    let mut o = Opts { scenario, size: 64, dur: 1.0, certs: "build/bench/certs".into() };
    for a in args {
        let (k, v) = a.split_once('=').ok_or("want key=value")?;
        match k {
            "size" => o.size = v.parse()?,
            "dur" => o.dur = v.parse()?,
            "certs" => o.certs = v.into(),
            _ => return Err(format!("unknown option {k}").into()),
        }
    }
    Ok(o)
}

fn certs(dir: &str, name: &str) -> Res<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let mut r = BufReader::new(std::fs::File::open(format!("{dir}/{name}.crt"))?);
    let chain = rustls_pemfile::certs(&mut r).collect::<Result<Vec<_>, _>>()?;
    let mut r = BufReader::new(std::fs::File::open(format!("{dir}/{name}.key"))?);
    let key = rustls_pemfile::private_key(&mut r)?.ok_or("no key")?;
    Ok((chain, key))
}

fn transport() -> Arc<TransportConfig> {
    let mut t = TransportConfig::default();
    t.stream_receive_window(VarInt::from_u32(4 << 20));
    t.receive_window(VarInt::from_u32(8 << 20));
    t.max_idle_timeout(Some(Duration::from_secs(30).try_into().unwrap()));
    t.keep_alive_interval(Some(Duration::from_secs(10)));
    Arc::new(t)
}

/// A server endpoint (bob) and a client endpoint (alice), mutual TLS
/// against the certgen CA.
fn endpoints(dir: &str) -> Res<(Endpoint, Endpoint, ClientConfig)> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256];
    let provider = Arc::new(provider);
    let mut roots = rustls::RootCertStore::empty();
    let mut r = BufReader::new(std::fs::File::open(format!("{dir}/ca.pem"))?);
    for c in rustls_pemfile::certs(&mut r) {
        roots.add(c?)?;
    }
    let roots = Arc::new(roots);

    let (chain, key) = certs(dir, "bob")?;
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone()).build()?;
    let mut sc = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    sc.alpn_protocols = vec![ALPN.to_vec()];
    let mut server_config = ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(sc)?));
    server_config.transport_config(transport());
    let server = Endpoint::server(server_config, "127.0.0.1:0".parse()?)?;

    let (chain, key) = certs(dir, "alice")?;
    let mut cc = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    cc.alpn_protocols = vec![ALPN.to_vec()];
    let mut client_config = ClientConfig::new(Arc::new(QuicClientConfig::try_from(cc)?));
    client_config.transport_config(transport());
    let client = Endpoint::client("127.0.0.1:0".parse()?)?;
    Ok((server, client, client_config))
}

async fn connect(o: &Opts) -> Res<(Endpoint, Endpoint, quinn::Connection, quinn::Connection)> {
    let (server, client, cc) = endpoints(&o.certs)?;
    let addr: SocketAddr = server.local_addr()?;
    let s2 = server.clone();
    let acc = tokio::spawn(async move {
        let inc = s2.accept().await.ok_or("no incoming connection")?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(inc.await?)
    });
    let cli = client.connect_with(cc, addr, "bob")?.await?;
    let srv = acc.await??;
    Ok((server, client, cli, srv))
}

fn frame(size: usize) -> Vec<u8> {
    let mut f = (size as u32).to_be_bytes().to_vec();
    f.resize(4 + size, 0);
    f
}

async fn msg(o: &Opts) -> Res<String> {
    let (_s, _c, cli, srv) = connect(o).await?;
    let size = o.size;
    let reader = tokio::spawn(async move {
        let r = srv.accept_uni().await?;
        let mut r = AsyncBufReader::with_capacity(64 << 10, r);
        let mut buf = vec![0u8; size];
        let (mut msgs, mut bytes) = (0u64, 0u64);
        loop {
            let mut hdr = [0u8; 4];
            match r.read_exact(&mut hdr).await {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e.into()),
            }
            let n = u32::from_be_bytes(hdr) as usize;
            if n > size {
                return Err("oversize frame".into());
            }
            r.read_exact(&mut buf[..n]).await?;
            msgs += 1;
            bytes += n as u64;
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((msgs, bytes, Instant::now(), srv))
    });
    let f = frame(size);
    let mut w = cli.open_uni().await?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(o.dur);
    let mut i = 0u64;
    // Small frames look at the clock every 64 writes, large ones every one.
    let every = if size >= 4096 { 1 } else { 64 };
    loop {
        w.write_all(&f).await?;
        i += 1;
        if i % every == 0 && Instant::now() >= deadline {
            break;
        }
    }
    w.finish()?;
    let (msgs, bytes, end, _srv) = reader.await??;
    if msgs != i {
        return Err(format!("received {msgs} of {i}").into());
    }
    let s = (end - start).as_secs_f64();
    Ok(format!(
        "\"msgs_per_s\":{:.1},\"gbit_s\":{:.4},\"msgs\":{},\"seconds\":{:.3}",
        msgs as f64 / s,
        bytes as f64 * 8.0 / s / 1e9,
        msgs,
        s
    ))
}

async fn pingpong(o: &Opts) -> Res<String> {
    let (_s, _c, cli, srv) = connect(o).await?;
    let size = o.size;
    tokio::spawn(async move {
        let (mut w, r) = srv.accept_bi().await?;
        let mut r = AsyncBufReader::new(r);
        let mut buf = vec![0u8; 4 + size];
        loop {
            if r.read_exact(&mut buf).await.is_err() {
                break;
            }
            w.write_all(&buf).await?;
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    });
    let (mut w, r) = cli.open_bi().await?;
    let mut r = AsyncBufReader::new(r);
    let f = frame(size);
    let mut inb = vec![0u8; f.len()];
    for _ in 0..10 {
        w.write_all(&f).await?;
        r.read_exact(&mut inb).await?;
    }
    let mut rtts = Vec::with_capacity(1 << 16);
    let deadline = Instant::now() + Duration::from_secs_f64(o.dur);
    while Instant::now() < deadline {
        let t = Instant::now();
        w.write_all(&f).await?;
        r.read_exact(&mut inb).await?;
        rtts.push(t.elapsed().as_secs_f64() * 1e6);
    }
    rtts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |p: f64| rtts[(p * (rtts.len() - 1) as f64) as usize];
    Ok(format!("\"p50_us\":{:.2},\"p99_us\":{:.2},\"samples\":{}", q(0.5), q(0.99), rtts.len()))
}

fn main() {
    let run = || -> Res<()> {
        if std::env::args().nth(1).as_deref() == Some("features") {
            println!("{}", if cfg!(feature = "aq") { "aq" } else { "" });
            return Ok(());
        }
        let o = parse()?;
        #[cfg(feature = "aq")]
        {
            let m = match o.scenario.as_str() {
                "aq-msg" => Some(aq::msg(&o)?),
                "aq-msg-async" => Some(aq::msg_async(&o, false)?),
                "aq-msg-async-batch" => Some(aq::msg_async(&o, true)?),
                "aq-pingpong" => Some(aq::pingpong(&o)?),
                _ => None,
            };
            if let Some(m) = m {
                println!("{{\"scenario\":\"{}\",\"impl\":\"aranya-quic-rust\",\"metrics\":{{{}}}}}", o.scenario, m);
                return Ok(());
            }
        }
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let m = rt.block_on(async {
            match o.scenario.as_str() {
                "msg" => msg(&o).await,
                "pingpong" => pingpong(&o).await,
                s => Err(format!("unknown scenario {s}").into()),
            }
        })?;
        println!("{{\"scenario\":\"{}\",\"impl\":\"quinn\",\"metrics\":{{{}}}}}", o.scenario, m);
        Ok(())
    };
    if let Err(e) = run() {
        eprintln!("quinnbench: {e}");
        std::process::exit(1);
    }
}
