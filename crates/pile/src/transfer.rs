//! File transfers for the shell: firmware downloads and diagnostics uploads over HTTP and HTTPS
//! (reqwest on rustls with the ring provider, trusting the pile's CA) and FTP (suppaftp).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

/// How long a download may go without progress.
const STALL: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("unsupported location {0:?} (http, https or ftp)")]
    Scheme(String),
    #[error("{0}")]
    BadUrl(String),
    #[error("https needs the CA that signed the server's certificate (--ca)")]
    NoCa,
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("FTP: {0}")]
    Ftp(#[from] suppaftp::FtpError),
    #[error("file: {0}")]
    Io(#[from] std::io::Error),
    #[error("no progress for {0:?}")]
    Stalled(Duration),
}

/// The firmware version an image carries: its file name (the last segment of the location's
/// path, percent-decoded, at most 50 characters); `None` for an empty image.
pub fn image_version(url: &str, size: u64) -> Option<String> {
    if size == 0 {
        return None;
    }
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.rsplit('/').next().unwrap_or_default();
    let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
    let name: String = name.chars().take(50).collect();
    (!name.is_empty()).then_some(name)
}

/// Downloads `url` to `dest`, reporting each new whole percent; returns the size.
pub async fn download(
    url: &str,
    dest: &Path,
    tls: Option<Arc<rustls::ClientConfig>>,
    progress: impl Fn(u8),
) -> Result<u64, TransferError> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    let part = dest.with_extension("part");
    let size = match scheme.as_deref() {
        Some("http") | Some("https") => http(url, &part, tls, &progress).await?,
        Some("ftp") => ftp(url, &part, &progress).await?,
        _ => return Err(TransferError::Scheme(url.to_owned())),
    };
    tokio::fs::rename(&part, dest).await?;
    Ok(size)
}

fn percent(done: u64, total: Option<u64>) -> u8 {
    match total {
        Some(t) if t > 0 => (done.saturating_mul(100) / t).min(100) as u8,
        _ => 0,
    }
}

async fn http(
    url: &str,
    part: &Path,
    tls: Option<Arc<rustls::ClientConfig>>,
    progress: &impl Fn(u8),
) -> Result<u64, TransferError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(STALL);
    if url.to_ascii_lowercase().starts_with("https") {
        let config = tls.ok_or(TransferError::NoCa)?;
        builder = builder.use_preconfigured_tls((*config).clone());
    }
    let mut response = builder.build()?.get(url).send().await?;
    if !response.status().is_success() {
        return Err(TransferError::Status(response.status().as_u16()));
    }
    let total = response.content_length();
    let mut file = tokio::fs::File::create(part).await?;
    let (mut done, mut last) = (0u64, 0u8);
    while let Some(chunk) = response.chunk().await? {
        file.write_all(&chunk).await?;
        done += chunk.len() as u64;
        let p = percent(done, total);
        if p != last {
            last = p;
            progress(p);
        }
    }
    file.sync_all().await?;
    Ok(done)
}

/// An FTP session logged in as the URL says (anonymous without credentials), and the URL's
/// path, percent-decoded.
async fn ftp_session(
    url: &str,
) -> Result<(suppaftp::tokio::AsyncFtpStream, String), TransferError> {
    use suppaftp::tokio::AsyncFtpStream;

    let parsed = url::Url::parse(url)
        .map_err(|e| TransferError::BadUrl(format!("bad FTP URL {url:?}: {e}")))?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let (user, password) = if parsed.username().is_empty() {
        ("anonymous".to_owned(), "ocpile@".to_owned())
    } else {
        (
            decode(parsed.username()),
            decode(parsed.password().unwrap_or_default()),
        )
    };
    let host = match parsed.host() {
        Some(url::Host::Ipv6(a)) => format!("[{a}]"),
        Some(h) => h.to_string(),
        None => return Err(TransferError::BadUrl(format!("no host in {url:?}"))),
    };
    let address = format!("{host}:{}", parsed.port().unwrap_or(21));
    let path = decode(parsed.path().trim_start_matches('/'));
    let mut ftp = tokio::time::timeout(Duration::from_secs(30), AsyncFtpStream::connect(address))
        .await
        .map_err(|_| TransferError::Stalled(Duration::from_secs(30)))??;
    ftp.login(&user, &password).await?;
    ftp.transfer_type(suppaftp::types::FileType::Binary).await?;
    Ok((ftp, path))
}

async fn ftp(url: &str, part: &Path, progress: &impl Fn(u8)) -> Result<u64, TransferError> {
    use tokio::io::AsyncReadExt;

    let (mut ftp, path) = ftp_session(url).await?;
    let total = ftp.size(&path).await.ok().map(|s| s as u64);
    let mut stream = ftp.retr_as_stream(&path).await?;
    let mut file = tokio::fs::File::create(part).await?;
    let (mut done, mut last) = (0u64, 0u8);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::time::timeout(STALL, stream.read(&mut buf))
            .await
            .map_err(|_| TransferError::Stalled(STALL))??;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n]).await?;
        done += n as u64;
        let p = percent(done, total);
        if p != last {
            last = p;
            progress(p);
        }
    }
    stream.finish().await?;
    let _ = ftp.quit().await;
    file.sync_all().await?;
    Ok(done)
}

/// Uploads `body` as `file_name` into the directory `location`: HTTP(S) PUT to
/// `location/file_name`, or FTP STOR there.
pub async fn upload(
    location: &str,
    file_name: &str,
    body: Vec<u8>,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<(), TransferError> {
    let target = format!("{}/{file_name}", location.trim_end_matches('/'));
    let scheme = location
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http") | Some("https") => {
            let mut builder = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(30))
                .timeout(Duration::from_secs(300));
            if scheme.as_deref() == Some("https") {
                let config = tls.ok_or(TransferError::NoCa)?;
                builder = builder.use_preconfigured_tls((*config).clone());
            }
            let response = builder.build()?.put(&target).body(body).send().await?;
            if !response.status().is_success() {
                return Err(TransferError::Status(response.status().as_u16()));
            }
            Ok(())
        }
        Some("ftp") => {
            let (mut ftp, path) = ftp_session(&target).await?;
            let mut reader = std::io::Cursor::new(body);
            ftp.put_file(&path, &mut reader).await?;
            let _ = ftp.quit().await;
            Ok(())
        }
        _ => Err(TransferError::Scheme(location.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_the_file_name() {
        assert_eq!(
            image_version(
                "http://8.209.68.26/download/cp.onfly.V1.2@23283e3+48.ws.cp",
                10
            )
            .as_deref(),
            Some("cp.onfly.V1.2@23283e3+48.ws.cp")
        );
        assert_eq!(
            image_version(
                "http://8.209.68.26/download/XSmart.V2.0.110(M3G31H)@7KW.EVPro.070?x=1",
                1
            )
            .as_deref(),
            Some("XSmart.V2.0.110(M3G31H)@7KW.EVPro.070")
        );
        assert_eq!(
            image_version("http://h/fw%20v2.bin", 1).as_deref(),
            Some("fw v2.bin")
        );
        assert_eq!(image_version("http://h/fw.bin", 0), None);
        assert_eq!(image_version("http://h/", 5), None);
    }
}
