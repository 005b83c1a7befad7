//! `ocpile send`: a command to a pile through the central system's API.

use anyhow::Context;

#[derive(clap::Args)]
pub struct SendArgs {
    /// The central system's address.
    #[arg(long, default_value = "http://127.0.0.1:8180")]
    central: String,
    /// The API token (also OCPILE_API_TOKEN).
    #[arg(long, env = "OCPILE_API_TOKEN", hide_env_values = true)]
    token: String,
    /// The pile's identity.
    id: String,
    /// The OCPP action, e.g. Reset, TriggerMessage, GetConfiguration.
    action: String,
    /// The payload as JSON.
    #[arg(default_value = "{}")]
    payload: String,
}

pub fn run(args: SendArgs) -> anyhow::Result<()> {
    let payload: serde_json::Value =
        serde_json::from_str(&args.payload).context("the payload is not JSON")?;
    let url = format!(
        "{}/api/piles/{}/commands/{}",
        args.central.trim_end_matches('/'),
        transport::identity::encode_segment(&args.id),
        args.action
    );
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let (status, body) = runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(&url)
            .bearer_auth(&args.token)
            .header("content-type", "application/json")
            .body(payload.to_string())
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let body = response.text().await.context("reading the answer")?;
        anyhow::Ok((status, body))
    })?;
    let pretty = serde_json::from_str::<serde_json::Value>(&body)
        .map(|v| serde_json::to_string_pretty(&v).expect("JSON prints"))
        .unwrap_or(body);
    println!("{pretty}");
    if status.is_success() {
        Ok(())
    } else {
        anyhow::bail!("HTTP {status}")
    }
}
