//! `DBGEnableInsight` (FAQ 3.7): `host,port` of the vendor's log collector, or empty for off.

/// `DBGEnableInsight`: `host,port`, or empty to switch remote insight off (FAQ 3.7).
pub fn parse_insight(value: &str) -> Result<Option<(String, u16)>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    let (host, port) = value.split_once(',').ok_or("expected host,port")?;
    if !crate::settings::valid_host(host) {
        return Err(format!("bad host {host:?}"));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("bad port {port:?}"))?;
    Ok(Some((host.to_owned(), port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insight() {
        assert_eq!(
            parse_insight("8.209.68.26,8883"),
            Ok(Some(("8.209.68.26".into(), 8883)))
        );
        assert_eq!(parse_insight(""), Ok(None));
        assert!(parse_insight("8.209.68.26").is_err());
        assert!(parse_insight("h,0").is_err());
    }
}
