// The security extension on sqlx (security events, the certificates signed): included by the
// SQLite and the PostgreSQL module after `sql_body.rs` (the same portable SQL for both).

const SECURITY_EVENT_COLUMNS: &str = "pile, time, kind, tech_info, source, received_at";
const CERTIFICATE_COLUMNS: &str =
    "serial, pile, not_before, not_after, signed_at, certificate, delivery";

#[async_trait]
impl super::security::SecurityStore for SqlRepository {
    async fn record_security_event(
        &self,
        event: &super::security::SecurityEventRow,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(&format!(
            "INSERT INTO security_events ({SECURITY_EVENT_COLUMNS}, digest) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
        ))
        .bind(&event.pile)
        .bind(event.time)
        .bind(&event.kind)
        .bind(&event.tech_info)
        .bind(&event.source)
        .bind(event.received_at)
        .bind(digest(event.tech_info.as_deref().unwrap_or("")))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn security_events(
        &self,
        pile: Option<&str>,
        kind: Option<&str>,
        before: Option<Millis>,
        limit: i64,
    ) -> Result<Vec<super::security::SecurityEventRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {SECURITY_EVENT_COLUMNS} FROM security_events \
             WHERE ($1 IS NULL OR pile = $1) AND ($2 IS NULL OR kind = $2) \
             AND ($3 IS NULL OR time < $3) \
             ORDER BY time DESC, pile DESC, kind DESC LIMIT $4"
        ))
        .bind(pile)
        .bind(kind)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn put_certificate(
        &self,
        c: &super::security::CertificateRow,
    ) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO pile_certificates ({CERTIFICATE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&c.serial)
        .bind(&c.pile)
        .bind(c.not_before)
        .bind(c.not_after)
        .bind(c.signed_at)
        .bind(&c.certificate)
        .bind(&c.delivery)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn certificate_delivered(&self, serial: &str, delivery: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE pile_certificates SET delivery = $1 WHERE serial = $2")
            .bind(delivery)
            .bind(serial)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn certificates(
        &self,
        pile: &str,
        limit: i64,
    ) -> Result<Vec<super::security::CertificateRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {CERTIFICATE_COLUMNS} FROM pile_certificates WHERE pile = $1 \
             ORDER BY signed_at DESC, serial DESC LIMIT $2"
        ))
        .bind(pile)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn set_image_signature(
        &self,
        image: i64,
        signature: &str,
        signing_certificate: &str,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE firmware_images SET signature = $1, signing_certificate = $2 WHERE id = $3",
        )
        .bind(signature)
        .bind(signing_certificate)
        .bind(image)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }
}
