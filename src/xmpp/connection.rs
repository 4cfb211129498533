//! The component connection (XEP-0114, <https://xmpp.org/extensions/xep-0114.html>).
//!
//! tokio-xmpp's `Component` stream ends on any error, including one stanza it cannot parse and
//! an idle read timeout; on a bridge that would drop every stanza queued behind a bad one. So
//! the handshake is done here with tokio-xmpp's public stream types, and the read loop keeps
//! going past unparseable stanzas (they are answered with an error by the inbound handler).
//! Reconnection, with backoff, is ours too.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_xmpp::xmlstream::{
    FallibleStreamElement, RawStanzaHeader, ReadError, StreamElementError, StreamHeader, Timeouts, XmppStream,
    XmppStreamElement, initiate_stream,
};
use xmpp_parsers::component::Handshake;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::ns;
use xmpp_parsers::ping::Ping;
use xmpp_parsers::stanza::Stanza;

use crate::core::backoff::Backoff;
use crate::core::metrics::{self, Link};
use crate::core::outbox::DeliveryError;
use crate::xmpp::depth::DepthLimited;
use crate::xmpp::error::Error;

/// The component stream: TCP, with too deeply nested XML cut out before the parser (`depth`).
type Stream = XmppStream<BufStream<DepthLimited<TcpStream>>>;

/// What the read loop hands to the inbound handler, in arrival order.
#[derive(Debug)]
pub enum Received {
    Stanza(Box<Stanza>),
    /// A stanza that could not be parsed; its header is kept to address an error reply.
    Invalid {
        kind: &'static str,
        header: RawStanzaHeader,
        error: String,
    },
    /// The connection (re)established: a chance to announce presence.
    Connected,
}

struct Outgoing {
    stanza: Stanza,
    /// Told once the stanza is written and flushed to the server (or failed).
    done: Option<oneshot::Sender<Result<(), Error>>>,
}

/// Requests the bridge sent and waits for an answer to, by their (random) iq id. Only an
/// answer from the addressee counts: anyone can send an iq with a guessed id.
#[derive(Clone, Default)]
struct PendingIqs(Arc<Mutex<HashMap<String, Waiter>>>);

/// Who a request went to, and where its answer goes.
type Waiter = (Jid, oneshot::Sender<Iq>);

impl PendingIqs {
    /// Hand `iq` to its waiter if it answers a pending request from its addressee.
    fn take_answer(&self, iq: Iq) -> Option<Iq> {
        let (Iq::Result { id, from, .. } | Iq::Error { id, from, .. }) = &iq else { return Some(iq) };
        let Ok(mut pending) = self.0.lock() else { return Some(iq) };
        match pending.get(id.as_str()) {
            Some((to, _)) if from.as_ref() == Some(to) => {}
            _ => return Some(iq),
        }
        match pending.remove(id.as_str()) {
            Some((_, waiter)) => {
                let _ = waiter.send(iq);
                None
            }
            None => Some(iq),
        }
    }
}

/// A random iq id (128 bits): answers cannot be forged by guessing the next one.
pub fn random_id(kind: &str) -> String {
    format!("ucb-{kind}-{:032x}", rand::random::<u128>())
}

/// Sends stanzas through the component connection; cheap to clone.
#[derive(Clone)]
pub struct XmppSender {
    tx: mpsc::Sender<Outgoing>,
    connected: Arc<AtomicBool>,
    pending: PendingIqs,
}

impl XmppSender {
    /// Send and wait until the stanza has been handed to the server.
    pub async fn send(&self, stanza: Stanza) -> Result<(), DeliveryError> {
        if !self.is_connected() {
            return Err(DeliveryError::Transient("XMPP server not connected".into()));
        }
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Outgoing { stanza, done: Some(done) })
            .await
            .map_err(|_| DeliveryError::Transient("XMPP connection task stopped".into()))?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DeliveryError::Transient(e.to_string())),
            Err(_) => Err(DeliveryError::Transient("XMPP connection dropped the stanza".into())),
        }
    }

    /// Send without waiting (replies to requests: losing one on a disconnect is harmless).
    pub async fn send_reply(&self, stanza: Stanza) {
        if self.tx.send(Outgoing { stanza, done: None }).await.is_err() {
            tracing::debug!("XMPP connection task stopped; reply dropped");
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Send a request (`get`/`set`) from `from` to `to` and wait up to `timeout` for its answer
    /// (a result or an error), which must come from `to`.
    pub async fn query(&self, iq: Iq, from: Jid, to: Jid, timeout: Duration) -> Result<Iq, DeliveryError> {
        let id = random_id("q");
        let iq = iq.with_id(id.clone()).with_from(from).with_to(to.clone());
        let (waiter, answer) = oneshot::channel();
        if let Ok(mut pending) = self.pending.0.lock() {
            pending.insert(id.clone(), (to.clone(), waiter));
        }
        self.send(Stanza::Iq(iq)).await?;
        let outcome = tokio::time::timeout(timeout, answer).await;
        if let Ok(mut pending) = self.pending.0.lock() {
            pending.remove(&id);
        }
        match outcome {
            Ok(Ok(iq)) => Ok(iq),
            Ok(Err(_)) => Err(DeliveryError::Transient("XMPP connection dropped the request".into())),
            Err(_) => Err(DeliveryError::Transient(format!("{to} did not answer within {timeout:?}"))),
        }
    }
}

/// Connection parameters.
#[derive(Debug, Clone)]
pub struct ComponentParams {
    pub jid: String,
    pub server: String,
    pub secret: String,
}

/// Create the sender and the task that keeps the connection up.
pub fn component(
    params: ComponentParams,
    inbound: mpsc::Sender<Received>,
    shutdown: watch::Receiver<bool>,
) -> (XmppSender, impl Future<Output = ()>) {
    let (tx, rx) = mpsc::channel(1024);
    let connected = Arc::new(AtomicBool::new(false));
    let pending = PendingIqs::default();
    let sender = XmppSender { tx, connected: connected.clone(), pending: pending.clone() };
    (sender, run(params, rx, inbound, connected, pending, shutdown))
}

const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Keep-alive ping interval; well below the read timeout.
const PING_EVERY: Duration = Duration::from_secs(25);

async fn run(
    params: ComponentParams,
    mut outgoing: mpsc::Receiver<Outgoing>,
    inbound: mpsc::Sender<Received>,
    connected: Arc<AtomicBool>,
    pending: PendingIqs,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(MIN_BACKOFF, MAX_BACKOFF);
    metrics::link_up(Link::Xmpp, false);
    let mut connected_before = false;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let stream = tokio::select! {
            r = connect(&params) => r,
            _ = shutdown.changed() => return,
        };
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                let wait = backoff.next_delay();
                tracing::warn!(server = %params.server, error = %e, retry_in = ?wait, "XMPP component connection failed");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {},
                    _ = shutdown.changed() => return,
                }
                continue;
            }
        };
        tracing::info!(jid = %params.jid, server = %params.server, "XMPP component connected");
        backoff.reset();
        connected.store(true, Ordering::Relaxed);
        metrics::link_up(Link::Xmpp, true);
        if connected_before {
            metrics::reconnected(Link::Xmpp);
        }
        connected_before = true;
        if inbound.send(Received::Connected).await.is_err() {
            return;
        }
        let reason = serve(&params, &mut stream, &mut outgoing, &inbound, &pending, &mut shutdown).await;
        connected.store(false, Ordering::Relaxed);
        metrics::link_up(Link::Xmpp, false);
        // Fail what was queued for this connection: the outbox retries it on the next one.
        while let Ok(out) = outgoing.try_recv() {
            if let Some(done) = out.done {
                let _ = done.send(Err(Error::Lost("")));
            }
        }
        match reason {
            Ended::Shutdown => {
                let _ = SinkExt::<&XmppStreamElement>::close(&mut stream).await;
                return;
            }
            Ended::Lost(e) => {
                tracing::warn!(error = %e, "XMPP component connection lost; reconnecting")
            }
        }
    }
}

enum Ended {
    Shutdown,
    Lost(Error),
}

async fn serve(
    params: &ComponentParams,
    stream: &mut Stream,
    outgoing: &mut mpsc::Receiver<Outgoing>,
    inbound: &mpsc::Sender<Received>,
    pending: &PendingIqs,
    shutdown: &mut watch::Receiver<bool>,
) -> Ended {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut ping_seq: u64 = 0;
    let mut acks = Acks::new(server_of(params));
    let ended = loop {
        let ended =
            serve_step(params, stream, outgoing, inbound, pending, shutdown, &mut ping, &mut ping_seq, &mut acks).await;
        if let Some(ended) = ended {
            break ended;
        }
    };
    // Whatever the server did not confirm is retried on the next connection.
    acks.fail_all(Error::Lost(" before the server confirmed the stanza"));
    ended
}

/// Sent stanzas waiting for the server to confirm it has taken them. XEP-0114 has no
/// acknowledgements, and a stanza written to the socket can still be lost (a connection reset
/// discards unsent data). The server answers iqs in order, after handling what came before
/// them on the stream; so after sending, the bridge sends a ping (a *barrier*) and reports the
/// stanzas sent before it as delivered only when the server's answer arrives.
struct Acks {
    /// Sent, not yet covered by a barrier.
    waiting: Vec<Done>,
    /// The barrier in flight (its iq id) and the stanzas it covers.
    in_flight: Option<(String, Vec<Done>)>,
    seq: u64,
    /// Random per connection: a barrier's id cannot be guessed and answered by someone else.
    prefix: String,
    /// The server the barriers go to: only its answer counts.
    server: Option<Jid>,
}

impl Acks {
    fn new(server: Option<Jid>) -> Self {
        Self { waiting: vec![], in_flight: None, seq: 0, prefix: random_id("ack"), server }
    }

    fn fail_all(&mut self, why: Error) {
        let covered = self.in_flight.take().map(|(_, d)| d).unwrap_or_default();
        for done in covered.into_iter().chain(self.waiting.drain(..)) {
            let _ = done.send(Err(why.clone()));
        }
    }

    /// The id of the next barrier to send, if one is due.
    fn next_barrier(&mut self) -> Option<String> {
        if self.in_flight.is_some() || self.waiting.is_empty() {
            return None;
        }
        self.seq += 1;
        let id = format!("{}-{}", self.prefix, self.seq);
        self.in_flight = Some((id.clone(), std::mem::take(&mut self.waiting)));
        Some(id)
    }

    /// An iq answer `id` came `from` someone: if it is the server answering the barrier, its
    /// stanzas are delivered.
    fn answered(&mut self, id: &str, from: Option<&Jid>) -> bool {
        match &self.in_flight {
            Some((barrier, _)) if barrier == id && from == self.server.as_ref() => {
                if let Some((_, covered)) = self.in_flight.take() {
                    for done in covered {
                        let _ = done.send(Ok(()));
                    }
                }
                true
            }
            _ => false,
        }
    }
}

/// Where a sender waits for its stanza's outcome.
type Done = oneshot::Sender<Result<(), Error>>;

fn iq_answer(stanza: &Stanza) -> Option<(&str, Option<&Jid>)> {
    match stanza {
        Stanza::Iq(Iq::Result { id, from, .. } | Iq::Error { id, from, .. }) => Some((id.as_str(), from.as_ref())),
        _ => None,
    }
}

/// The XMPP server's domain (the component's parent domain), where pings and barriers go.
fn server_of(params: &ComponentParams) -> Option<Jid> {
    params.jid.split_once('.').and_then(|(_, d)| Jid::new(d).ok())
}

#[allow(clippy::too_many_arguments)] // the connection's state, passed down from `serve`
async fn serve_step(
    params: &ComponentParams,
    stream: &mut Stream,
    outgoing: &mut mpsc::Receiver<Outgoing>,
    inbound: &mpsc::Sender<Received>,
    pending: &PendingIqs,
    shutdown: &mut watch::Receiver<bool>,
    ping: &mut tokio::time::Interval,
    ping_seq: &mut u64,
    acks: &mut Acks,
) -> Option<Ended> {
    {
        enum Step {
            In(Option<Result<FallibleStreamElement, ReadError>>),
            Out(Option<Outgoing>),
            Ping,
            Shutdown,
        }
        let step = tokio::select! {
            biased;
            _ = shutdown.changed() => Step::Shutdown,
            item = stream.next() => Step::In(item),
            out = outgoing.recv() => Step::Out(out),
            _ = ping.tick() => Step::Ping,
        };
        match step {
            Step::Shutdown => return Some(Ended::Shutdown),
            Step::In(None) => return Some(Ended::Lost(Error::StreamClosed)),
            Step::In(Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::Stanza(stanza))))) => {
                if iq_answer(&stanza).is_some_and(|(id, from)| acks.answered(id, from)) {
                    if let Some(id) = acks.next_barrier()
                        && let Err(e) = send_barrier(stream, params, id).await
                    {
                        return Some(Ended::Lost(Error::io(e)));
                    }
                    return None;
                }
                let stanza = match stanza {
                    Stanza::Iq(iq) => match pending.take_answer(iq) {
                        Some(iq) => Stanza::Iq(iq),
                        None => return None,
                    },
                    other => other,
                };
                return forward(params, stream, outgoing, inbound, acks, Received::Stanza(Box::new(stanza))).await;
            }
            Step::In(Some(Ok(FallibleStreamElement::Err(StreamElementError::InvalidStanza {
                name,
                header,
                error,
                ..
            })))) => {
                let kind = match name.to_ncname().as_str() {
                    "message" => "message",
                    "presence" => "presence",
                    _ => "iq",
                };
                tracing::info!(kind, from = ?header.from, id = ?header.id, %error, "unparseable stanza");
                let invalid = Received::Invalid { kind, header, error: error.to_string() };
                return forward(params, stream, outgoing, inbound, acks, invalid).await;
            }
            Step::In(Some(Ok(FallibleStreamElement::Err(e)))) => {
                tracing::warn!(error = %e, "ignoring an invalid stream element");
            }
            Step::In(Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::StreamError(e))))) => {
                return Some(Ended::Lost(Error::StreamError(format!("{e:?}"))));
            }
            Step::In(Some(Ok(FallibleStreamElement::Ok(other)))) => {
                tracing::debug!(element = ?other, "ignoring unexpected stream element");
            }
            Step::In(Some(Err(ReadError::SoftTimeout))) => {
                // Quiet stream: make the server say something before the hard timeout.
                *ping_seq += 1;
                if let Err(e) = send_ping(stream, params, *ping_seq).await {
                    return Some(Ended::Lost(Error::io(e)));
                }
            }
            Step::In(Some(Err(ReadError::ParseError(e)))) => {
                tracing::warn!(error = %e, "XML parse error on the component stream");
            }
            Step::In(Some(Err(ReadError::HardError(e)))) => return Some(Ended::Lost(Error::io(e))),
            Step::In(Some(Err(ReadError::StreamFooterReceived))) => {
                return Some(Ended::Lost(Error::ServerClosed));
            }
            Step::Out(None) => return Some(Ended::Shutdown),
            Step::Out(Some(out)) => return write_out(params, stream, acks, out).await,
            Step::Ping => {
                *ping_seq += 1;
                if let Err(e) = send_ping(stream, params, *ping_seq).await {
                    return Some(Ended::Lost(Error::io(e)));
                }
            }
        }
    }
    None
}

/// Write one outgoing stanza and, if due, a barrier after it.
async fn write_out(params: &ComponentParams, stream: &mut Stream, acks: &mut Acks, mut out: Outgoing) -> Option<Ended> {
    // Text from Matrix may hold characters XML cannot carry; one would fail the whole stream.
    crate::xmpp::xml_text::make_xml_safe(&mut out.stanza);
    if let Err(e) = stream.send(&XmppStreamElement::Stanza(out.stanza)).await {
        if let Some(done) = out.done {
            let _ = done.send(Err(Error::io(&e)));
        }
        return Some(Ended::Lost(Error::io(e)));
    }
    if let Some(done) = out.done {
        acks.waiting.push(done);
    }
    if let Some(id) = acks.next_barrier()
        && let Err(e) = send_barrier(stream, params, id).await
    {
        return Some(Ended::Lost(Error::io(e)));
    }
    None
}

/// Hand a received item to the inbound handler. While its queue is full, outgoing stanzas keep
/// being written: the handler may itself be waiting to send (a reply), and a reader that only
/// waited would deadlock with it.
async fn forward(
    params: &ComponentParams,
    stream: &mut Stream,
    outgoing: &mut mpsc::Receiver<Outgoing>,
    inbound: &mpsc::Sender<Received>,
    acks: &mut Acks,
    item: Received,
) -> Option<Ended> {
    loop {
        tokio::select! {
            biased;
            permit = inbound.reserve() => {
                return match permit {
                    Ok(permit) => {
                        permit.send(item);
                        None
                    }
                    Err(_) => Some(Ended::Shutdown),
                };
            }
            out = outgoing.recv() => match out {
                None => return Some(Ended::Shutdown),
                Some(out) => {
                    if let Some(ended) = write_out(params, stream, acks, out).await {
                        return Some(ended);
                    }
                }
            },
        }
    }
}

async fn send_ping(stream: &mut Stream, params: &ComponentParams, seq: u64) -> io::Result<()> {
    send_barrier(stream, params, format!("ucb-ping-{seq}")).await
}

/// A ping to the server with the given id (keep-alive, or a barrier for `Acks`).
async fn send_barrier(stream: &mut Stream, params: &ComponentParams, id: String) -> io::Result<()> {
    let mut iq = Iq::from_get(id, Ping);
    if let (Ok(from), Some(server)) = (Jid::new(&params.jid), server_of(params)) {
        *iq.from_mut() = Some(from);
        *iq.to_mut() = Some(server);
    }
    stream.send(&XmppStreamElement::Stanza(Stanza::Iq(iq))).await
}

async fn connect(params: &ComponentParams) -> Result<Stream, Error> {
    let addr = tokio::net::lookup_host(&params.server)
        .await
        .map_err(|e| Error::Resolve { server: params.server.clone(), reason: e.to_string() })?
        .next()
        .ok_or_else(|| Error::NoAddress(params.server.clone()))?;
    let jid: BareJid =
        params.jid.parse().map_err(|e| Error::BadJid { jid: params.jid.clone(), reason: format!("{e}") })?;
    let timeouts = Timeouts { read_timeout: Duration::from_secs(60), response_timeout: Duration::from_secs(20) };
    // What tokio-xmpp's TcpServerConnector does, with the depth limit between socket and parser.
    let tcp = TcpStream::connect(addr).await.map_err(|e| Error::Connect(e.to_string()))?;
    // A stanza and the barrier after it are two small writes: with Nagle's algorithm the
    // barrier waited for the server's delayed ACK of the stanza (40 ms on Linux), which made a
    // conversation's deliveries to XMPP one per 40 ms.
    tcp.set_nodelay(true).map_err(|e| Error::Connect(e.to_string()))?;
    let header = StreamHeader { to: Some(Cow::Borrowed(jid.domain().as_str())), from: None, id: None };
    let mut pending = initiate_stream(BufStream::new(DepthLimited::new(tcp)), ns::COMPONENT, header, timeouts)
        .await
        .map_err(|e| Error::Connect(e.to_string()))?;
    let header = pending.take_header();
    let stream_id = header.id.ok_or(Error::NoStreamId)?.into_owned();
    let mut stream: Stream = pending.skip_features();
    stream
        .send(&XmppStreamElement::ComponentHandshake(Handshake::from_stream_id_and_password(stream_id, &params.secret)))
        .await
        .map_err(|e| Error::Handshake(e.to_string()))?;
    loop {
        match stream.next().await {
            Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::ComponentHandshake(_)))) => {
                return Ok(stream);
            }
            Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::StreamError(e)))) => {
                return Err(Error::Refused(format!("{e:?}")));
            }
            Some(Err(ReadError::SoftTimeout)) => continue,
            Some(Ok(other)) => {
                return Err(Error::Handshake(format!("unexpected answer: {other:?}")));
            }
            Some(Err(e)) => return Err(Error::Handshake(e.to_string())),
            None => return Err(Error::ClosedInHandshake),
        }
    }
}

#[cfg(test)]
mod ack_tests {
    use super::*;

    #[test]
    fn stanzas_are_confirmed_only_by_the_barrier_sent_after_them() {
        let server = Jid::new("localhost").ok();
        let mut acks = Acks::new(server.clone());
        let (a_tx, mut a) = oneshot::channel();
        let (b_tx, mut b) = oneshot::channel();
        let (c_tx, mut c) = oneshot::channel();
        acks.waiting.push(a_tx);
        let first = acks.next_barrier().expect("a barrier for the first stanza");
        // Sent while the first barrier is in flight: waits for the next one.
        acks.waiting.push(b_tx);
        assert_eq!(acks.next_barrier(), None);
        assert!(!acks.answered("ucb-ping-1", server.as_ref()), "a keep-alive answer confirms nothing");
        let stranger = Jid::new("mallory@localhost/x").ok();
        assert!(!acks.answered(&first, stranger.as_ref()), "only the server's answer counts");
        assert!(!acks.answered(&first, None));
        assert!(a.try_recv().is_err());
        assert!(acks.answered(&first, server.as_ref()));
        assert_eq!(a.try_recv(), Ok(Ok(())));
        assert!(b.try_recv().is_err());
        let second = acks.next_barrier().expect("a barrier for the second stanza");
        assert_ne!(first, second);
        acks.waiting.push(c_tx);
        acks.fail_all(Error::Lost(""));
        assert_eq!(b.try_recv(), Ok(Err(Error::Lost(""))));
        assert_eq!(c.try_recv(), Ok(Err(Error::Lost(""))));
        assert_eq!(acks.next_barrier(), None);
    }
}
