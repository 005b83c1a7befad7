// The writes of the piles' Security Profiles and passwords (issue 17). Included beside
// `sql_writes.rs`.

/// A pile's profile and password set by an operator, the profile it connected with, a
/// password it accepted.
async fn apply_security(tx: &mut Tx, op: &WriteOp) -> Result<WriteResult, sqlx::Error> {
    let r = match op {
        WriteOp::SetSecurity {
            id,
            security_profile,
            allow_downgrade,
            password_hash,
        } => {
            // The lowering check and the write in one statement: a handshake that raised the
            // profile it connected with meanwhile is not undone.
            sqlx::query(
                "UPDATE piles SET \
                 security_profile = COALESCE($1, security_profile), \
                 connected_profile = CASE WHEN $2 = 1 THEN 0 ELSE connected_profile END, \
                 password_hash = COALESCE($3, password_hash), \
                 previous_password_hash = CASE WHEN $3 IS NULL THEN previous_password_hash \
                 ELSE NULL END \
                 WHERE id = $4 AND ($2 = 1 OR $1 IS NULL \
                 OR ($1 >= security_profile AND $1 >= connected_profile))",
            )
            .bind(security_profile)
            .bind(flag(*allow_downgrade))
            .bind(password_hash)
            .bind(id)
            .execute(&mut **tx)
            .await?
        }
        WriteOp::ConnectedAtProfile {
            id,
            profile,
            current_password,
        } => {
            sqlx::query(
                "UPDATE piles SET \
                 connected_profile = CASE WHEN connected_profile < $1 THEN $1 \
                 ELSE connected_profile END, \
                 previous_password_hash = CASE WHEN $2 = 1 THEN NULL \
                 ELSE previous_password_hash END \
                 WHERE id = $3",
            )
            .bind(profile)
            .bind(flag(*current_password))
            .bind(id)
            .execute(&mut **tx)
            .await?
        }
        WriteOp::PasswordRotated { id, password_hash } => {
            sqlx::query(
                "UPDATE piles SET previous_password_hash = password_hash, password_hash = $1 \
                 WHERE id = $2",
            )
            .bind(password_hash)
            .bind(id)
            .execute(&mut **tx)
            .await?
        }
        WriteOp::PasswordRotationUndone { id } => {
            sqlx::query(
                "UPDATE piles SET password_hash = previous_password_hash, \
                 previous_password_hash = NULL WHERE id = $1 AND previous_password_hash IS NOT NULL",
            )
            .bind(id)
            .execute(&mut **tx)
            .await?
        }
        other => {
            return Err(sqlx::Error::Protocol(format!(
                "not a security write: {other:?}"
            )))
        }
    };
    Ok(WriteResult::Affected(r.rows_affected()))
}
