//! A loopback demonstration of the foundation: our websocket server with Basic auth, and
//! virtual charge points that boot and send heartbeats through the RPC runtime.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use ocpp::{
    BootNotificationRequest, BootNotificationResponse, CallError, CiString20, Decoded,
    HeartbeatRequest, HeartbeatResponse, Policy, RegistrationStatus, Request, Response, Timestamp,
};
use transport::auth::StaticPasswords;
use transport::client::{connect, ClientConfig};
use transport::identity::url_with_identity;
use transport::server::{ServerConfig, WsServer};
use transport::{spawn_rpc, HandlerFuture, LinkConfig};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// How many virtual charge points connect.
    #[arg(long, default_value_t = 3)]
    piles: usize,
    /// Heartbeats each charge point sends after booting.
    #[arg(long, default_value_t = 2)]
    heartbeats: usize,
}

fn central_handler() -> Arc<dyn transport::Handler> {
    Arc::new(|request: Decoded<Request>| -> HandlerFuture {
        Box::pin(async move {
            let now = Timestamp::from_utc(Utc::now());
            match request.value {
                Request::BootNotification(boot) => {
                    tracing::info!(vendor = %boot.charge_point_vendor, model = %boot.charge_point_model, "central: BootNotification accepted");
                    Ok(Response::BootNotification(BootNotificationResponse {
                        status: RegistrationStatus::Accepted,
                        current_time: now,
                        interval: 1,
                    }))
                }
                Request::Heartbeat(_) => {
                    Ok(Response::Heartbeat(HeartbeatResponse { current_time: now }))
                }
                other => Err(CallError::not_supported(other.action().as_str())),
            }
        })
    })
}

fn pile_handler() -> Arc<dyn transport::Handler> {
    Arc::new(|request: Decoded<Request>| -> HandlerFuture {
        Box::pin(async move { Err(CallError::not_supported(request.value.action().as_str())) })
    })
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let mut auth = StaticPasswords::new();
        for n in 1..=args.piles {
            auth = auth.with(format!("DEMO{n:04}"), format!("pw{n}"));
        }
        let mut server = WsServer::bind("127.0.0.1:0", ServerConfig::new(Arc::new(auth))).await?;
        let base = format!("ws://{}/ocpp/", server.local_addr());
        println!("central system listening on {base}");
        tokio::spawn(async move {
            while let Some(accepted) = server.accept().await {
                println!(
                    "central: {} connected from {}",
                    accepted.identity, accepted.remote
                );
                let link = LinkConfig {
                    policy: Policy::Lenient,
                    ..LinkConfig::default()
                };
                let handle = spawn_rpc(accepted.ws, link, central_handler());
                tokio::spawn(async move {
                    let reason = handle.closed().await;
                    println!("central: {} disconnected ({reason:?})", accepted.identity);
                });
            }
        });

        let mut piles = Vec::new();
        for n in 1..=args.piles {
            let base = base.clone();
            let heartbeats = args.heartbeats;
            piles.push(tokio::spawn(async move {
                let identity = format!("DEMO{n:04}");
                let mut config = ClientConfig::new(url_with_identity(&base, &identity));
                config.basic = Some((identity.clone(), format!("pw{n}").into_bytes()));
                let ws = connect(&config)
                    .await
                    .with_context(|| format!("{identity} connecting"))?;
                let rpc = spawn_rpc(
                    ws,
                    LinkConfig {
                        ping_interval: Some(Duration::from_secs(5)),
                        ..LinkConfig::default()
                    },
                    pile_handler(),
                );
                let boot = BootNotificationRequest {
                    charge_point_vendor: CiString20::new("ocpile")?,
                    charge_point_model: CiString20::new("M3G3")?,
                    charge_point_serial_number: Some(identity.as_str().try_into()?),
                    charge_box_serial_number: None,
                    firmware_version: Some(env!("CARGO_PKG_VERSION").try_into()?),
                    iccid: None,
                    imsi: None,
                    meter_type: None,
                    meter_serial_number: None,
                };
                let answer = rpc.call(&boot).await?;
                println!(
                    "{identity}: BootNotification {}, heartbeat every {} s",
                    answer.value.status, answer.value.interval
                );
                for _ in 0..heartbeats {
                    tokio::time::sleep(Duration::from_secs(answer.value.interval.max(1) as u64))
                        .await;
                    let hb = rpc.call(&HeartbeatRequest {}).await?;
                    println!(
                        "{identity}: Heartbeat, central time {}",
                        hb.value.current_time
                    );
                }
                rpc.close();
                rpc.closed().await;
                anyhow::Ok(())
            }));
        }
        for pile in piles {
            pile.await??;
        }
        println!(
            "demo finished: {} charge points booted and sent {} heartbeats each",
            args.piles, args.heartbeats
        );
        anyhow::Ok(())
    })
}
