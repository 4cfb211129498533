//! Start-up, wiring and graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{mpsc, watch};

use crate::bridge::Bridge;
use crate::config::Config;
use crate::core::backoff::Backoff;
use crate::matrix::client::{MatrixClient, MatrixError};
use crate::matrix::registration;
use crate::store::Store;
use crate::xmpp::connection::{ComponentParams, component};

/// Run the bridge until SIGINT or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    // Listen for the signals first: one that arrives while starting up (say, a service manager
    // or test stopping the bridge right after /health answered) stops the bridge cleanly once
    // it can, instead of killing it with the signal's default action.
    let mut stop = stop_requested()?;
    let config = Arc::new(config);
    let reg_path = config.resolve(&config.appservice.registration);
    let registration = registration::load(&reg_path, &config)?;

    let store = Store::connect(&config.database_url(), config.database.max_connections)
        .await
        .with_context(|| format!("opening database {}", config.database.url))?;
    tracing::info!(backend = ?store.backend(), "database ready");

    let links = config.links.rules()?;
    let mut matrix = MatrixClient::new(&config.homeserver.url, &registration.as_token, &registration.id)?;
    tokio::select! {
        ready = wait_for_homeserver(&mut matrix, &config.homeserver.url) => ready?,
        _ = stop.wait_for(|stop| *stop) => return Ok(()),
    }

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (inbound_tx, inbound_rx) = mpsc::channel(4096);
    let params = ComponentParams {
        jid: config.xmpp.component_jid.clone(),
        server: config.xmpp.server.clone(),
        secret: config.xmpp.secret.clone(),
    };
    let (xmpp, xmpp_task) = component(params, inbound_tx, shutdown_rx.clone());
    let instance = store.instance_id().await.context("reading the database's instance id")?;
    let xmpp_out =
        crate::xmpp::out::ComponentOut { sender: xmpp.clone(), component: config.xmpp.component_jid.clone() };
    let bridge = Bridge::new(
        config.clone(),
        store.clone(),
        Arc::new(matrix),
        links,
        Arc::new(xmpp_out),
        registration.hs_token.clone(),
        instance,
    );

    let listener = tokio::net::TcpListener::bind(config.appservice.listen)
        .await
        .with_context(|| format!("binding appservice.listen {}", config.appservice.listen))?;
    tracing::info!(listen = %config.appservice.listen, "HTTP server listening");
    let media = crate::http::media::MediaSource::new(
        &config.homeserver.url,
        &registration.as_token,
        config.appservice.max_requests,
    )
    .context("setting up the media client")?;
    let http_in = Arc::new(crate::bridge::http_in::HttpIn(bridge.clone()));
    let mut router = crate::http::router(http_in.clone(), http_in.clone(), Arc::new(media))
        .merge(crate::matrix::appservice::router(http_in.clone()));
    if config.metrics.enabled {
        let token = config.metrics.bearer_token(|p| config.resolve(p))?;
        let handle = install_metrics()?;
        tracing::info!(token = token.is_some(), "metrics at /metrics");
        router = router.merge(crate::http::metrics::router(Arc::new(crate::http::metrics::Scrape { handle, token })));
    }
    if let Some(settings) = &config.sms {
        let sms = crate::sms::SmsService::new(settings.clone(), &config.contact_files(), &config.appservice.url)?;
        tracing::info!(gateway = sms.provider.name(), "SMS on");
        let _ = bridge.sms.set(Arc::new(sms));
        router = router.merge(crate::http::sms::router(http_in.clone()));
    }
    if let Some(settings) = config.chatbot.clone() {
        let chatbot = crate::chatbot::Chatbot::new(settings, |p| config.resolve(p)).context("starting the chatbot")?;
        tracing::info!(user = ?bridge.map.chatbot(), provider = ?chatbot.settings.provider, "chatbot on");
        let _ = bridge.chatbot.set(Arc::new(chatbot));
        tokio::spawn(bridge.clone().chatbot_health_forever());
    }
    if let Some(calls) = bridge.start_calls(&config).await? {
        let _ = bridge.calls.set(calls.clone());
        router = router.merge(crate::http::calls::router(calls));
    }
    let bounds = crate::http::server::Bounds::from_config(&config.appservice);
    let http_task = tokio::spawn(crate::http::server::serve(listener, router, bounds, shutdown_rx.clone()));

    let xmpp_task = tokio::spawn(xmpp_task);
    tokio::spawn(crate::xmpp::inbound::run(bridge.clone(), xmpp, inbound_rx));
    bridge.sweep().await;
    tokio::spawn(bridge.clone().sweep_forever());
    tokio::spawn(return_memory_when_quiet(bridge.clone()));
    tokio::spawn(bridge.clone().keep_ghost_presence());
    tokio::spawn(bridge.clone().missed_chats_forever());
    tokio::spawn(bridge.clone().watch_xmpp_forever());
    tokio::spawn(bridge.clone().watch_homeserver_forever());
    // Rooms bridged before the bridge wrote MSC2346 bridge info get it; start-up does not wait.
    tokio::spawn(bridge.clone().backfill_bridge_info());

    // Now that we listen, have the homeserver ping us: a successful ping makes Synapse flush
    // the transactions it queued while we were down, instead of waiting out its backoff (up to
    // 512 s). Keep pinging now and then: after a failed transaction (say the database was
    // down) it shortens the homeserver's backoff too. A transaction Synapse strands at the end
    // of such a flush is caught by `core::txn_gaps` in the transaction handler.
    // The admins' control room (found by alias, or created with the admins invited).
    let control = bridge.clone();
    tokio::spawn(async move {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        // The bot's name and avatar first: the control room's invitations show them.
        loop {
            let delay = backoff.next_delay();
            match control.set_bot_profile().await {
                Ok(()) => break,
                Err(e @ crate::bridge::avatars::BotProfileError::Avatar(_)) => {
                    break tracing::error!(error = %e, "cannot set the bot's avatar");
                }
                Err(e) => tracing::warn!(error = %e, retry_in = ?delay, "cannot set the bot's profile"),
            }
            tokio::time::sleep(delay).await;
        }
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        loop {
            let delay = backoff.next_delay();
            match control.ensure_control_room().await {
                Ok(room) => return tracing::info!(%room, "control room ready"),
                Err(e) => tracing::warn!(error = %e, retry_in = ?delay, "cannot set up the control room"),
            }
            tokio::time::sleep(delay).await;
        }
    });

    let pinger = bridge.clone();
    tokio::spawn(async move {
        let mut ok_once = false;
        loop {
            match pinger.matrix.ping_homeserver(&format!("ucb-{}", crate::store::now_ms())).await {
                Ok(()) if !ok_once => {
                    tracing::info!("homeserver ping succeeded");
                    ok_once = true;
                }
                Ok(()) => {}
                Err(e) => tracing::warn!(error = %e, "homeserver ping failed"),
            }
            tokio::time::sleep(if ok_once { Duration::from_secs(15) } else { Duration::from_secs(2) }).await;
        }
    });

    let _ = stop.wait_for(|stop| *stop).await;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    // Within 12 s in all (service managers and the e2e fixture allow 15): open requests finish,
    // the XMPP stream closes, pooled connections are returned. Anything cut short is still in
    // the outbox (or unanswered, so its sender retries); nothing accepted depends on the drain.
    if tokio::time::timeout(Duration::from_secs(7), http_task).await.is_err() {
        tracing::warn!("HTTP requests still open after 7 s; stopping anyway");
    }
    if tokio::time::timeout(Duration::from_secs(3), xmpp_task).await.is_err() {
        tracing::warn!("the XMPP stream did not close within 3 s; stopping anyway");
    }
    if tokio::time::timeout(Duration::from_secs(2), store.close()).await.is_err() {
        tracing::warn!("database connections still in use after 2 s; stopping anyway");
    }
    Ok(())
}

/// Install the Prometheus recorder the `core::metrics` facade records into, and keep its
/// histograms trimmed (the exporter leaves upkeep to its user).
fn install_metrics() -> anyhow::Result<metrics_exporter_prometheus::PrometheusHandle> {
    use crate::core::metrics::{DELIVERY_BUCKETS, DELIVERY_SECONDS};
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(DELIVERY_SECONDS.into()), DELIVERY_BUCKETS)
        .context("setting the delivery histogram's buckets")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// The homeserver may start after us: wait for it rather than fail. A rejected `as_token`
/// is a configuration error, though, and waiting would not fix it.
async fn wait_for_homeserver(matrix: &mut MatrixClient, url: &str) -> anyhow::Result<()> {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(15));
    loop {
        match matrix.discover_versions().await {
            Ok(()) => return Ok(()),
            Err(MatrixError::Refused { status: 401 | 403, errcode, message }) => {
                anyhow::bail!(
                    "the homeserver at {url} rejected the as_token ({errcode}: {message}); \
                     has it loaded this registration file (Synapse: app_service_config_files, then a restart)?"
                );
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(homeserver = url, error = %e, retry_in = ?delay, "homeserver not reachable yet");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Becomes `true` on SIGINT or SIGTERM. The handlers are installed before this returns.
fn stop_requested() -> anyhow::Result<watch::Receiver<bool>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        let _ = tx.send(true);
    });
    Ok(rx)
}

/// After a busy spell, hand the memory the allocator keeps free back to the system. glibc keeps
/// what a burst freed in its heaps (one per thread that allocated), so without this the
/// resident size after a burst stays at its peak (bench/README.md, "Memory"). Once per quiet
/// spell: the bridge delivered something in the last 5 s, and nothing in the 5 s since.
async fn return_memory_when_quiet(bridge: Arc<Bridge>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let (mut seen, mut busy) = (bridge.deliveries(), false);
    loop {
        tick.tick().await;
        let now = bridge.deliveries();
        if now != seen {
            (seen, busy) = (now, true);
        } else if busy {
            busy = false;
            release_free_memory();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    // SAFETY: malloc_trim takes no pointers; it locks and trims glibc's own heaps, which is
    // safe at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}
