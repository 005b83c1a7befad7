//! File transfers for the shell: firmware downloads and diagnostics uploads over HTTP and HTTPS
//! (reqwest on rustls with the ring provider, trusting the pile's CA) and FTP (suppaftp).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

/// How long a download may go without progress.
const STALL: Duration = Duration::from_secs(60);
/// The largest image a pile takes: a larger one fails its download (charger images are a few
/// megabytes).
pub const MAX_IMAGE_BYTES: u64 = 256 * 1024 * 1024;

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
    #[error("the image is larger than {MAX_IMAGE_BYTES} bytes")]
    TooLarge,
    #[error("the image ended after {got} of {expected} bytes")]
    Truncated { got: u64, expected: u64 },
}

impl TransferError {
    /// Whether the server refused the transfer for a reason no retry changes, and which.
    pub fn refusal(&self) -> Option<pile_core::UploadRefusal> {
        use pile_core::UploadRefusal;
        match self {
            TransferError::Status(400) => Some(UploadRefusal::BadMessage),
            TransferError::Status(401 | 403) => Some(UploadRefusal::PermissionDenied),
            TransferError::Status(405 | 501) | TransferError::Scheme(_) => {
                Some(UploadRefusal::NotSupportedOperation)
            }
            _ => None,
        }
    }
}

/// Where a downloaded image goes: into a file (written as `<file>.part`, renamed once whole),
/// or through a count of its bytes without being kept (a fleet's piles: the image is checked,
/// its size and its length, and costs no disk).
enum Sink {
    File {
        part: PathBuf,
        file: tokio::fs::File,
    },
    Discard,
    /// Kept in memory (a signed image on a pile without an image file: the core checks the
    /// signature over its bytes).
    Memory(Vec<u8>),
}

impl Sink {
    async fn open(dest: Option<&Path>) -> Result<Sink, TransferError> {
        let Some(dest) = dest else {
            return Ok(Sink::Discard);
        };
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let part = dest.with_extension("part");
        let file = tokio::fs::File::create(&part).await?;
        Ok(Sink::File { part, file })
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), TransferError> {
        match self {
            Sink::File { file, .. } => file.write_all(bytes).await?,
            Sink::Memory(kept) => kept.extend_from_slice(bytes),
            Sink::Discard => {}
        }
        Ok(())
    }

    /// The image is whole: on disk, as `dest`.
    async fn keep(self, dest: Option<&Path>) -> Result<(), TransferError> {
        if let (Sink::File { part, file }, Some(dest)) = (self, dest) {
            file.sync_all().await?;
            drop(file);
            tokio::fs::rename(&part, dest).await?;
        }
        Ok(())
    }

    /// The download failed: nothing of it stays on disk.
    async fn discard(self) {
        if let Sink::File { part, file } = self {
            drop(file);
            let _ = tokio::fs::remove_file(&part).await;
        }
    }
}

/// Counts an image's bytes and reports each new whole percent.
struct Tally<'a, F: Fn(u8)> {
    done: u64,
    total: Option<u64>,
    last: u8,
    progress: &'a F,
}

impl<'a, F: Fn(u8)> Tally<'a, F> {
    fn new(total: Option<u64>, progress: &'a F) -> Result<Self, TransferError> {
        if total.is_some_and(|t| t > MAX_IMAGE_BYTES) {
            return Err(TransferError::TooLarge);
        }
        Ok(Tally {
            done: 0,
            total,
            last: 0,
            progress,
        })
    }

    fn add(&mut self, n: usize) -> Result<(), TransferError> {
        self.done += n as u64;
        if self.done > MAX_IMAGE_BYTES {
            return Err(TransferError::TooLarge);
        }
        let p = percent(self.done, self.total);
        if p != self.last {
            self.last = p;
            (self.progress)(p);
        }
        Ok(())
    }

    /// The size, once the image is whole: as long as announced, when it was.
    fn whole(&self) -> Result<u64, TransferError> {
        match self.total {
            Some(expected) if expected != self.done => Err(TransferError::Truncated {
                got: self.done,
                expected,
            }),
            _ => Ok(self.done),
        }
    }
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

/// Downloads `url` into `dest` (its folder made if missing), or, without a `dest`, through
/// and checked without being kept; reports each new whole percent; returns the size.
pub async fn download(
    url: &str,
    dest: Option<&Path>,
    tls: Option<Arc<rustls::ClientConfig>>,
    progress: impl Fn(u8),
) -> Result<u64, TransferError> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("http" | "https" | "ftp")) {
        return Err(TransferError::Scheme(url.to_owned()));
    }
    let mut sink = Sink::open(dest).await?;
    let fetched = fetch(url, &mut sink, tls, &progress).await;
    match fetched {
        Ok(size) => {
            sink.keep(dest).await?;
            Ok(size)
        }
        Err(e) => {
            sink.discard().await;
            Err(e)
        }
    }
}

/// Downloads `url` into memory (no file) and returns the image's bytes.
pub async fn download_bytes(
    url: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
    progress: impl Fn(u8),
) -> Result<Vec<u8>, TransferError> {
    let mut sink = Sink::Memory(Vec::new());
    fetch(url, &mut sink, tls, &progress).await?;
    match sink {
        Sink::Memory(bytes) => Ok(bytes),
        _ => Ok(Vec::new()),
    }
}

async fn fetch(
    url: &str,
    sink: &mut Sink,
    tls: Option<Arc<rustls::ClientConfig>>,
    progress: &impl Fn(u8),
) -> Result<u64, TransferError> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("ftp") => ftp(url, sink, progress).await,
        Some("http" | "https") => http(url, sink, tls, progress).await,
        _ => Err(TransferError::Scheme(url.to_owned())),
    }
}

fn percent(done: u64, total: Option<u64>) -> u8 {
    match total {
        Some(t) if t > 0 => (done.saturating_mul(100) / t).min(100) as u8,
        _ => 0,
    }
}

async fn http(
    url: &str,
    sink: &mut Sink,
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
    let mut tally = Tally::new(response.content_length(), progress)?;
    while let Some(chunk) = response.chunk().await? {
        tally.add(chunk.len())?;
        sink.write(&chunk).await?;
    }
    tally.whole()
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

async fn ftp(url: &str, sink: &mut Sink, progress: &impl Fn(u8)) -> Result<u64, TransferError> {
    use tokio::io::AsyncReadExt;

    let (mut ftp, path) = ftp_session(url).await?;
    let total = ftp.size(&path).await.ok().map(|s| s as u64);
    let mut tally = Tally::new(total, progress)?;
    let mut stream = ftp.retr_as_stream(&path).await?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::time::timeout(STALL, stream.read(&mut buf))
            .await
            .map_err(|_| TransferError::Stalled(STALL))??;
        if n == 0 {
            break;
        }
        tally.add(n)?;
        sink.write(&buf[..n]).await?;
    }
    stream.finish().await?;
    let _ = ftp.quit().await;
    tally.whole()
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
    use tokio::io::AsyncReadExt;

    /// An HTTP server on a free port that answers one request with `head` and `body`.
    async fn serve_once(head: String, body: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 4096];
            let _ = socket.read(&mut request).await;
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&body).await;
            let _ = socket.shutdown().await;
        });
        format!("http://{address}/images/fw-2.0.bin")
    }

    fn answer(length: u64) -> String {
        format!("HTTP/1.1 200 OK\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n")
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ocpile-transfer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn an_image_lands_in_its_file_and_the_folder_is_made() {
        let image = vec![7u8; 300_000];
        let url = serve_once(answer(image.len() as u64), image.clone()).await;
        let dir = scratch("kept");
        let dest = dir.join("pile").join("firmware.bin");
        let seen = std::sync::Mutex::new(Vec::new());
        let size = download(&url, Some(&dest), None, |p| seen.lock().unwrap().push(p))
            .await
            .unwrap();
        assert_eq!(size, 300_000);
        assert_eq!(std::fs::read(&dest).unwrap(), image);
        assert!(!dest.with_extension("part").exists());
        assert_eq!(seen.lock().unwrap().last(), Some(&100));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn an_image_streamed_through_is_counted_and_not_kept() {
        let url = serve_once(answer(5000), vec![1u8; 5000]).await;
        assert_eq!(download(&url, None, None, |_| {}).await.unwrap(), 5000);
    }

    #[tokio::test]
    async fn a_cut_image_fails_and_leaves_nothing_on_disk() {
        let url = serve_once(answer(10_000), vec![1u8; 4000]).await;
        let dir = scratch("cut");
        let dest = dir.join("firmware.bin");
        let e = download(&url, Some(&dest), None, |_| {}).await.unwrap_err();
        assert!(
            matches!(e, TransferError::Http(_) | TransferError::Truncated { .. }),
            "{e}"
        );
        assert!(!dest.exists());
        assert!(!dest.with_extension("part").exists());
        // Streamed through, the same.
        let url = serve_once(answer(10_000), vec![1u8; 4000]).await;
        assert!(download(&url, None, None, |_| {}).await.is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_signed_image_is_kept_in_memory_without_a_file() {
        let image: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let url = serve_once(answer(5000), image.clone()).await;
        assert_eq!(download_bytes(&url, None, |_| {}).await.unwrap(), image);
    }

    #[tokio::test]
    async fn an_upload_the_server_forbids_is_a_refusal() {
        let head = "HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
        let url = serve_once(head.to_owned(), Vec::new()).await;
        let location = url.trim_end_matches("/fw-2.0.bin");
        let e = upload(location, "log.txt", b"x".to_vec(), None)
            .await
            .unwrap_err();
        assert_eq!(
            e.refusal(),
            Some(pile_core::UploadRefusal::PermissionDenied),
            "{e}"
        );
        assert_eq!(TransferError::Status(500).refusal(), None);
    }

    #[tokio::test]
    async fn an_image_announced_too_large_is_refused() {
        let url = serve_once(answer(MAX_IMAGE_BYTES + 1), Vec::new()).await;
        let e = download(&url, None, None, |_| {}).await.unwrap_err();
        assert!(matches!(e, TransferError::TooLarge), "{e}");
    }

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
